using System.Threading.Channels;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// Wakes the dispatcher as soon as something may have become Ready (a job was submitted, a task succeeded) so that
/// the time from Ready to dispatch is not a poll interval. Losing a wake-up costs at most one poll interval.
/// </summary>
public sealed class DispatchSignal
{
    // One pending wake-up covers any number of events.
    private readonly Channel<bool> _wakeups = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    public void Wake() => _wakeups.Writer.TryWrite(true);

    /// <summary>Waits for a wake-up or the timeout, whichever comes first.</summary>
    public async Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout);
        try
        {
            await _wakeups.Reader.ReadAsync(timeoutSource.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
    }
}
