using System.Diagnostics;
using System.Threading.Channels;
using MassTransit;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Contracts;

namespace ProgrammableFilm.Worker;

/// <summary>
/// Publishes the worker's successes, several to a message: whatever finished while the previous message waited for the
/// broker's confirm goes in the next one, and a worker that reported moments ago waits up to <see cref="Linger"/> for
/// more. An idle worker's report leaves at once; a busy worker's short attempts share a message, as the coordinator
/// applies them (a batch per transaction, whose cost is mostly per transaction).
/// </summary>
public sealed class SuccessReports : IDisposable
{
    /// <summary>Reports per message at most: a message stays well under the broker's frame size whatever the logs hold.</summary>
    private const int MaxReports = 100;

    /// <summary>How long a busy worker's report waits for others to share its message: a few one-frame renders.</summary>
    private static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// How long a report is retried while the broker is away: the device time is spent and the frames are written, so
    /// it is worth waiting for; past this the lease decides.
    /// </summary>
    private static readonly TimeSpan ReportPatience = TimeSpan.FromMinutes(10);

    private readonly Channel<Pending> _pending = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });

    private readonly IBus _bus;
    private readonly TimeProvider _time;
    private readonly ILogger<SuccessReports> _logger;

    public SuccessReports(IBus bus, TimeProvider time, ILogger<SuccessReports> logger)
    {
        (_bus, _time, _logger) = (bus, time, logger);
        _ = Task.Run(PublishAllAsync);
    }

    /// <summary>
    /// Completes once the report is with the broker; the attempt stays registered (its lease renewed) until then.
    /// <paramref name="attemptTrace"/> is the attempt's own trace, which the report's message links to.
    /// </summary>
    public Task ReportAsync(TaskSucceeded report, string? attemptTrace)
    {
        var published = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending.Writer.TryWrite(new Pending(report, attemptTrace, published));
        return published.Task;
    }

    /// <summary>Ends the publishing loop once what is pending has gone (a rehearsal's reports drop their loop with their bus).</summary>
    public void Dispose() => _pending.Writer.TryComplete();

    private sealed record Pending(TaskSucceeded Report, string? AttemptTrace, TaskCompletionSource Published);

    private async Task PublishAllAsync()
    {
        var batch = new List<Pending>(MaxReports);
        var lastPublished = long.MinValue;
        while (await _pending.Reader.WaitToReadAsync())
        {
            if (lastPublished != long.MinValue && _time.GetElapsedTime(lastPublished) < Linger)
            {
                await Task.Delay(Linger, _time);
            }

            while (batch.Count < MaxReports && _pending.Reader.TryRead(out var item))
            {
                batch.Add(item);
            }

            lastPublished = _time.GetTimestamp();
            try
            {
                using var activity = StartReport(batch);
                await PublishPatientlyAsync(_bus, new TasksSucceeded { Reports = [.. batch.Select(b => b.Report)] }, $"{batch.Count} success(es)", _time, _logger);
                batch.ForEach(b => b.Published.SetResult());
            }
            catch (Exception e)
            {
                batch.ForEach(b => b.Published.SetException(e));
            }

            batch.Clear();
        }
    }

    /// <summary>The report's message is traced on its own (it carries several attempts), linked to each attempt's trace.</summary>
    private static Activity? StartReport(List<Pending> batch)
    {
        var links = batch.Select(p => p.AttemptTrace is { } parent && ActivityContext.TryParse(parent, null, out var attempt) ? new ActivityLink(attempt) : default)
            .Where(link => link.Context != default)
            .ToList();
        return WorkerTelemetry.Tracing.StartActivity(ActivityKind.Producer, parentContext: default, links: links, name: "report successes")?
            .SetTag("pfilm.reports", batch.Count);
    }

    /// <summary>Publishes, retrying with backoff while the broker is away, for up to <see cref="ReportPatience"/>.</summary>
    internal static async Task PublishPatientlyAsync(IBus bus, object message, string what, TimeProvider time, ILogger logger)
    {
        var deadline = time.GetUtcNow() + ReportPatience;
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            try
            {
                await bus.Publish(message, message.GetType(), CancellationToken.None);
                return;
            }
            catch (Exception e) when (time.GetUtcNow() < deadline)
            {
                logger.LogWarning("Report of {What} not published ({Error}); retrying in {Delay}", what, e.Message, delay);
                await Task.Delay(delay, time);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }
}
