namespace ProgrammableFilm.Coordinator;

/// <summary>
/// One read shared by the callers that want it at once, none of them served anything older than its own call: a caller
/// that arrives while the read runs waits for the next one, which starts when that one ends and answers everyone who
/// arrived meanwhile. Fifty pipelines polling the fleet then cost two reads at a time, not fifty, and a caller that
/// just changed something still sees its change (a cache would not promise that).
/// </summary>
public sealed class CoalescedRead<T>(Func<CancellationToken, Task<T>> read)
{
    private readonly CoalescedReads<byte, T> _reads = new((_, cancellationToken) => read(cancellationToken));

    /// <inheritdoc cref="CoalescedReads{TKey, T}.ReadAsync"/>
    public Task<T> ReadAsync(CancellationToken cancellationToken) => _reads.ReadAsync(0, cancellationToken);
}

/// <summary>
/// <see cref="CoalescedRead{T}"/> for each key on its own (say a job: the callers polling one job share its reads,
/// another job's callers are not held up by them). A key is remembered only while its read runs.
/// </summary>
public sealed class CoalescedReads<TKey, T>(Func<TKey, CancellationToken, Task<T>> read) where TKey : notnull
{
    private readonly Lock _gate = new();

    /// <summary>The keys being read, each with the callers that arrived during its read (null: none yet).</summary>
    private readonly Dictionary<TKey, TaskCompletionSource<T>?> _reading = [];

    /// <summary>
    /// Cancelling stops this caller's wait, not the read: others wait for it too. The read itself runs to its end (the
    /// database's command timeout bounds it).
    /// </summary>
    public Task<T> ReadAsync(TKey key, CancellationToken cancellationToken)
    {
        TaskCompletionSource<T> answer;
        bool start;
        lock (_gate)
        {
            start = !_reading.TryGetValue(key, out var waiting);
            answer = start ? NewAnswer() : waiting ?? NewAnswer();
            _reading[key] = start ? null : answer;
        }

        if (start)
        {
            _ = ReadInTurnAsync(key, answer);
        }

        return answer.Task.WaitAsync(cancellationToken);
    }

    private static TaskCompletionSource<T> NewAnswer() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task ReadInTurnAsync(TKey key, TaskCompletionSource<T> answer)
    {
        while (true)
        {
            try
            {
                answer.SetResult(await read(key, CancellationToken.None));
            }
            catch (Exception e)
            {
                answer.SetException(e);
            }

            lock (_gate)
            {
                if (_reading[key] is not { } waiting)
                {
                    _reading.Remove(key);
                    return;
                }

                answer = waiting;
                _reading[key] = null;
            }
        }
    }
}
