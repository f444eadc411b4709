using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Engine;

namespace ProgrammableFilm.Worker;

/// <summary>
/// Runs one attempt. Idempotency key: the attempt id, enforced by the claim: a duplicate or superseded message is
/// refused by the coordinator before any device time is spent on it.
/// </summary>
public sealed class RenderTaskConsumer(
    IRequestClient<ClaimAttempt> claims,
    IBus bus,
    TaskRunner runner,
    RunningAttempts running,
    RenderSlots slots,
    Energy.EnergyAccount energy,
    WorkerOptions options,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<RenderTaskConsumer> logger) : IConsumer<RenderTask>
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan ReportPatience = TimeSpan.FromMinutes(10);

    public async Task Consume(ConsumeContext<RenderTask> context)
    {
        var task = context.Message;
        Response<AttemptClaimGranted, AttemptClaimRefused> claim;
        try
        {
            claim = await claims.GetResponse<AttemptClaimGranted, AttemptClaimRefused>(
                new ClaimAttempt
                {
                    AttemptId = task.AttemptId,
                    WorkerId = options.WorkerId,
                    Pool = options.Pool,
                    DeviceSku = options.DeviceSku,
                    DeviceCount = options.DeviceCount,
                    Hostname = Environment.MachineName,
                },
                context.CancellationToken);
        }
        catch (Exception e) when (e is RequestTimeoutException or RequestFaultException)
        {
            // The coordinator (or its database) is away. Dropping the message is safe: the attempt is still Queued in
            // the database and the republish sweep sends it again; had the claim gone through unanswered, the lease
            // runs out and the task runs again.
            logger.LogWarning("Claim of attempt {AttemptId} not answered ({Error}); leaving it to the coordinator's sweeps", task.AttemptId, e.Message);
            return;
        }

        if (claim.Is(out Response<AttemptClaimRefused>? refused))
        {
            logger.LogInformation("Attempt {AttemptId} of {Kind} refused: {Reason}", task.AttemptId, task.Kind, refused.Message.Reason);
            return;
        }

        // From here the attempt is ours: its heartbeats renew its lease while it waits for a slot and while it renders.
        // It runs to the end even if the broker connection that delivered it drops (only the coordinator's word or
        // the worker's shutdown stops it); if this process dies before reporting, its heartbeats stop, the lease runs
        // out and the task runs elsewhere.
        var attempt = running.TryStart(task.AttemptId, options.DeviceCount, lifetime.ApplicationStopping);
        if (attempt is null)
        {
            logger.LogInformation("Attempt {AttemptId} is already running here; duplicate message dropped", task.AttemptId);
            return;
        }

        try
        {
            attempt.Log("info", $"claimed by worker {options.WorkerId} on {Environment.MachineName} ({options.DeviceCount} × {options.DeviceSku}): {task.Kind} of frames {task.Frames[0]}–{task.Frames[^1]}, engine {task.Engine}{(task.MaxFrameBatch is { } batch ? $", at most {batch} frames per batch" : "")}");
            var outcome = await RunAsync(context, task, attempt);
            await ReportAsync(outcome, task.AttemptId);
        }
        finally
        {
            running.Remove(attempt);
        }
    }

    /// <summary>Renders in a slot; the slot is free again before the outcome is published, for the next attempt.</summary>
    private async Task<object> RunAsync(ConsumeContext context, RenderTask task, RunningAttempt attempt)
    {
        var progress = new AttemptProgress(context, attempt, time, ProgressInterval);
        using var activity = WorkerTelemetry.StartRun(task, options);
        var holdsSlot = false;
        try
        {
            await slots.WaitAsync(attempt.Token);
            holdsSlot = true;
            attempt.BeginRendering();
            energy.Start(task.AttemptId);
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
    /// Publishes the outcome, retrying while the broker is away: the device time is spent and the frames are written,
    /// so the report is worth waiting for. The attempt stays registered meanwhile, so its heartbeats keep the lease;
    /// past <see cref="ReportPatience"/> the lease decides.
    /// </summary>
    private async Task ReportAsync(object outcome, Guid attemptId)
    {
        var deadline = time.GetUtcNow() + ReportPatience;
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            try
            {
                await bus.Publish(outcome, outcome.GetType(), CancellationToken.None);
                return;
            }
            catch (Exception e) when (time.GetUtcNow() < deadline)
            {
                logger.LogWarning("Report of attempt {AttemptId} not published ({Error}); retrying in {Delay}", attemptId, e.Message, delay);
                await Task.Delay(delay, time);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }

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
