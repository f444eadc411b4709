using System.Threading.Channels;
using ProgrammableFilm.Contracts;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// Applies successes by group commit: whatever reports arrived while the previous transaction ran go in the next one.
/// A success costs the coordinator and PostgreSQL mostly per transaction, not per report, so the group grows with the
/// load instead of being cut by a timer; an idle farm's report is applied at once. One transaction at a time: two
/// would wait for each other anyway on the rows successes share (their dependants, the ledger's roll-ups).
/// </summary>
public sealed class SuccessGroupCommit
{
    /// <summary>Reports per transaction at most, so one stays a few hundred milliseconds on a busy database.</summary>
    private const int MaxReports = 2_000;

    private readonly Channel<Pending> _pending = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskEvents _events;

    public SuccessGroupCommit(TaskEvents events)
    {
        _events = events;
        _ = Task.Run(ApplyAllAsync);
    }

    /// <summary>Completes when the reports are committed, or fails with the group's error (the message is then retried).</summary>
    public Task ApplyAsync(IReadOnlyList<TaskSucceeded> reports)
    {
        var applied = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending.Writer.TryWrite(new Pending(reports, applied));
        return applied.Task;
    }

    private sealed record Pending(IReadOnlyList<TaskSucceeded> Reports, TaskCompletionSource Applied);

    private async Task ApplyAllAsync()
    {
        var group = new List<Pending>();
        while (await _pending.Reader.WaitToReadAsync())
        {
            var reports = 0;
            while (reports < MaxReports && _pending.Reader.TryRead(out var item))
            {
                group.Add(item);
                reports += item.Reports.Count;
            }

            try
            {
                await _events.SucceededAsync([.. group.SelectMany(p => p.Reports)], CancellationToken.None);
                group.ForEach(p => p.Applied.SetResult());
            }
            catch (Exception e)
            {
                group.ForEach(p => p.Applied.SetException(e));
            }

            group.Clear();
        }
    }
}
