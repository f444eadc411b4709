using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Engine;

namespace ProgrammableFilm.Worker;

/// <summary>
/// Runs a bundle's attempts. Idempotency key: the attempt id, enforced by the claim: a duplicate or superseded message
/// is refused by the coordinator before any device time is spent on it.
/// </summary>
public sealed class RenderTaskConsumer(
    IRequestClient<ClaimAttempts> claims,
    IBus bus,
    SuccessReports successes,
    TaskRunner runner,
    RunningAttempts running,
    RenderSlots slots,
    Energy.EnergyAccount energy,
    WorkerOptions options,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<RenderTaskConsumer> logger) : IConsumer<RenderBundle>
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(500);

    public async Task Consume(ConsumeContext<RenderBundle> context)
    {
        var tasks = context.Message.Tasks.DistinctBy(t => t.AttemptId).ToList();
        AttemptClaimsDecided decided;
        try
        {
            decided = (await claims.GetResponse<AttemptClaimsDecided>(
                new ClaimAttempts
                {
                    AttemptIds = [.. tasks.Select(t => t.AttemptId)],
                    WorkerId = options.WorkerId,
                    Pool = options.Pool,
                    DeviceSku = options.DeviceSku,
                    DeviceCount = options.DeviceCount,
                    Hostname = Environment.MachineName,
                },
                context.CancellationToken)).Message;
        }
        catch (Exception e) when (e is RequestTimeoutException or RequestFaultException)
        {
            // The coordinator (or its database) is away. Dropping the message is safe: the attempts are still Queued in
            // the database and the republish sweep sends them again; had the claim gone through unanswered, the leases
            // run out and the tasks run again.
            logger.LogWarning("Claim of {Count} attempt(s) not answered ({Error}); leaving them to the coordinator's sweeps", tasks.Count, e.Message);
            return;
        }

        foreach (var refused in decided.Refused)
        {
            logger.LogInformation("Attempt {AttemptId} refused: {Reason}", refused.AttemptId, refused.Reason);
        }

        // From here the granted attempts are ours: their heartbeats renew their leases while they wait for a slot and
        // while they render. They run to the end even if the broker connection that delivered them drops (only the
        // coordinator's word or the worker's shutdown stops them); if this process dies before reporting, its
        // heartbeats stop, the leases run out and the tasks run elsewhere.
        var granted = decided.Granted.ToHashSet();
        var owned = tasks.Where(t => granted.Contains(t.AttemptId))
            .Select(task => (Task: task, Attempt: running.TryStart(task.AttemptId, options.DeviceCount, lifetime.ApplicationStopping)))
            .ToList();
        foreach (var (task, _) in owned.Where(o => o.Attempt is null))
        {
            logger.LogInformation("Attempt {AttemptId} is already running here; duplicate message dropped", task.AttemptId);
        }

        await Task.WhenAll(owned.Where(o => o.Attempt is not null).Select(o => RunOwnedAsync(context, o.Task, o.Attempt!)));
    }

    private async Task RunOwnedAsync(ConsumeContext context, RenderTask task, RunningAttempt attempt)
    {
        try
        {
            attempt.Log("info", $"claimed by worker {options.WorkerId} on {Environment.MachineName} ({options.DeviceCount} × {options.DeviceSku}): {task.Kind} of frames {task.Frames[0]}–{task.Frames[^1]}, engine {task.Engine}{(task.MaxFrameBatch is { } batch ? $", at most {batch} frames per batch" : "")}");
            var outcome = await RunAsync(context, task, attempt);
            if (outcome is TaskSucceeded succeeded)
            {
                await successes.ReportAsync(succeeded, task.TraceParent);
            }
            else
            {
                await ReportAsync(outcome, task.AttemptId);
            }
        }
        finally
        {
            running.Remove(attempt);
        }
    }

    /// <summary>Renders in a slot; the slot is free again before the outcome is published, for the next attempt.</summary>
    private async Task<object> RunAsync(ConsumeContext context, RenderTask task, RunningAttempt attempt)
    {
        using var activity = WorkerTelemetry.StartRun(task, options);
        var holdsSlot = false;
        try
        {
            await slots.WaitAsync(attempt.Token);
            holdsSlot = true;
            attempt.BeginRendering();
            energy.Start(task.AttemptId);
            // Its interval counts from here: an attempt that waited for a slot has shown no progress yet.
            var progress = new AttemptProgress(context, attempt, time, ProgressInterval);
            var outcome = await runner.RunAsync(task, progress, attempt.Token);
            attempt.Log("info", $"succeeded: {outcome.Outputs.Count} output(s) in {attempt.DeviceSeconds / options.DeviceCount:F2} s");
            return new TaskSucceeded
            {
                AttemptId = task.AttemptId,
                WorkerId = options.WorkerId,
                ReportedAt = time.GetUtcNow().UtcDateTime,
                Usage = Usage(attempt),
                Outputs = [.. outcome.Outputs],
                Metrics = outcome.Metrics,
                Facts = outcome.Facts,
                UnknownWords = [.. outcome.UnknownWords],
                Log = attempt.UnsentLog(),
            };
        }
        catch (Exception e)
        {
            var (classification, reason) = e switch
            {
                OperationCanceledException when attempt.StopReason is { } stop => ("cancelled", $"stopped by the coordinator: {stop}"),
                // Claimed ahead in a bundle but never started: no failure of the task's, which goes back to the dispatcher.
                OperationCanceledException when !holdsSlot && lifetime.ApplicationStopping.IsCancellationRequested => ("cancelled", "the worker shut down before starting it"),
                OperationCanceledException when lifetime.ApplicationStopping.IsCancellationRequested => ("transient", "the worker is shutting down"),
                FatalTaskException or ArgumentException or InvalidDataException or AssemblyException or FileNotFoundException or DirectoryNotFoundException => ("fatal", e.Message),
                OutOfMemoryException or InsufficientMemoryException => ("out-of-memory", e.Message),
                _ => ("transient", e.Message),
            };
            activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, classification);
            attempt.Log(classification == "cancelled" ? "warning" : "error", classification == "transient" || classification == "fatal" ? $"{classification}: {e}" : $"{classification}: {reason}");
            logger.LogWarning(e, "Attempt {AttemptId} of {Kind} ended ({Classification}): {Reason}", task.AttemptId, task.Kind, classification, reason);
            return new TaskFailed
            {
                AttemptId = task.AttemptId,
                WorkerId = options.WorkerId,
                ReportedAt = time.GetUtcNow().UtcDateTime,
                Usage = Usage(attempt),
                Classification = classification,
                Reason = reason,
                Log = attempt.UnsentLog(),
            };
        }
        finally
        {
            if (holdsSlot)
            {
                slots.Release();
            }
        }
    }

    /// <summary>
    /// Publishes a failure, retrying while the broker is away (see <see cref="SuccessReports.PublishPatientlyAsync"/>);
    /// the attempt stays registered meanwhile, so its heartbeats keep the lease.
    /// </summary>
    private Task ReportAsync(object outcome, Guid attemptId) =>
        SuccessReports.PublishPatientlyAsync(bus, outcome, $"attempt {attemptId}", time, logger);

    /// <summary>What the attempt used; its energy is measured when the worker has a meter, else the coordinator estimates it.</summary>
    private DeviceUsage Usage(RunningAttempt attempt)
    {
        var joules = energy.Finish(attempt.AttemptId);
        if (joules is { } measured)
        {
            attempt.Log("info", $"energy: {measured:F1} J measured by {energy.Source}");
        }

        return new DeviceUsage
        {
            DeviceSku = options.DeviceSku,
            DeviceCount = options.DeviceCount,
            DeviceSeconds = attempt.DeviceSeconds,
            EnergyJoules = joules ?? 0,
            EnergyEstimated = joules is null,
        };
    }

    /// <summary>Keeps the attempt's progress for heartbeats and publishes it at most every interval.</summary>
    private sealed class AttemptProgress(ConsumeContext context, RunningAttempt attempt, TimeProvider time, TimeSpan interval) : IProgress<RenderProgress>
    {
        // Counted from the start, so a task shorter than the interval publishes no progress at all: its report follows.
        private long _last = time.GetTimestamp();

        public void Report(RenderProgress value)
        {
            attempt.Report(value.Completed, value.Total);
            var now = time.GetTimestamp();
            var last = Interlocked.Read(ref _last);
            if (time.GetElapsedTime(last, now) < interval || Interlocked.CompareExchange(ref _last, now, last) != last)
            {
                return;
            }

            // Progress is advisory: a lost progress message is replaced by the next one (or the next heartbeat).
            _ = context.Publish(new TaskProgressed { AttemptId = attempt.AttemptId, Completed = value.Completed, Total = value.Total });
        }
    }
}
