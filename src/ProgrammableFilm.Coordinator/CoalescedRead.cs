namespace ProgrammableFilm.Coordinator;

/// <summary>
/// One read shared by the callers that want it at once, none of them served anything older than its own call: a caller
/// that arrives while the read runs waits for the next one, which starts when that one ends and answers everyone who
/// arrived meanwhile. Fifty pipelines polling the fleet then cost two reads at a time, not fifty, and a caller that
/// just changed something still sees its change (a cache would not promise that).
/// </summary>
public sealed class CoalescedRead<T>(Func<CancellationToken, Task<T>> read)
{
    private readonly Lock _gate = new();

    private TaskCompletionSource<T>? _waiting;

    private bool _reading;

    /// <summary>
    /// Cancelling stops this caller's wait, not the read: others wait for it too. The read itself runs to its end (the
    /// database's command timeout bounds it).
    /// </summary>
    public Task<T> ReadAsync(CancellationToken cancellationToken)
    {
        TaskCompletionSource<T> answer;
        bool start;
        lock (_gate)
        {
            answer = _waiting ??= new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
            start = !_reading;
            if (start)
            {
                _reading = true;
                _waiting = null;
            }
        }

        if (start)
        {
            _ = ReadInTurnAsync(answer);
        }

        return answer.Task.WaitAsync(cancellationToken);
    }

    private async Task ReadInTurnAsync(TaskCompletionSource<T> answer)
    {
        while (true)
        {
            try
            {
                answer.SetResult(await read(CancellationToken.None));
            }
            catch (Exception e)
            {
                answer.SetException(e);
            }

            lock (_gate)
            {
                if (_waiting is null)
                {
                    _reading = false;
                    return;
                }

                answer = _waiting;
                _waiting = null;
            }
        }
    }
}
