using System.Diagnostics;
using MassTransit;
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
    TaskRunner runner,
    WorkerOptions options,
    TimeProvider time,
    ILogger<RenderTaskConsumer> logger) : IConsumer<RenderTask>
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(500);

    public async Task Consume(ConsumeContext<RenderTask> context)
    {
        var task = context.Message;
        var cancellationToken = context.CancellationToken;
        var claim = await claims.GetResponse<AttemptClaimGranted, AttemptClaimRefused>(
            new ClaimAttempt
            {
                AttemptId = task.AttemptId,
                WorkerId = options.WorkerId,
                Pool = options.Pool,
                DeviceSku = options.DeviceSku,
                DeviceCount = options.DeviceCount,
                Hostname = Environment.MachineName,
            },
            cancellationToken);
        if (claim.Is(out Response<AttemptClaimRefused>? refused))
        {
            logger.LogInformation("Attempt {AttemptId} of {Kind} refused: {Reason}", task.AttemptId, task.Kind, refused.Message.Reason);
            return;
        }

        // From here the attempt is ours. If this process dies before reporting, the attempt stays Claimed until the
        // coordinator declares this worker lost and runs the task elsewhere.
        var started = time.GetTimestamp();
        var progress = new ThrottledProgress(context, task.AttemptId, time, ProgressInterval);
        try
        {
            var outcome = await runner.RunAsync(task, progress, cancellationToken);
            await context.Publish(
                new TaskSucceeded
                {
                    AttemptId = task.AttemptId,
                    WorkerId = options.WorkerId,
                    ReportedAt = time.GetUtcNow().UtcDateTime,
                    Usage = Usage(started),
                    Outputs = [.. outcome.Outputs],
                    Metrics = outcome.Metrics,
                    Facts = outcome.Facts,
                    UnknownWords = [.. outcome.UnknownWords],
                },
                cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            var classification = e switch
            {
                FatalTaskException or ArgumentException or InvalidDataException or AssemblyException => "fatal",
                OutOfMemoryException or InsufficientMemoryException => "out-of-memory",
                _ => "transient",
            };
            logger.LogWarning(e, "Attempt {AttemptId} of {Kind} failed ({Classification})", task.AttemptId, task.Kind, classification);
            await context.Publish(
                new TaskFailed { AttemptId = task.AttemptId, WorkerId = options.WorkerId, ReportedAt = time.GetUtcNow().UtcDateTime, Usage = Usage(started), Classification = classification, Reason = e.Message },
                cancellationToken);
        }
    }

    private DeviceUsage Usage(long started) => new()
    {
        DeviceSku = options.DeviceSku,
        DeviceCount = options.DeviceCount,
        DeviceSeconds = time.GetElapsedTime(started).TotalSeconds * options.DeviceCount,
        EnergyJoules = 0,
        EnergyEstimated = true,
    };

    /// <summary>Publishes progress at most every interval so a fast engine does not flood the coordinator.</summary>
    private sealed class ThrottledProgress(ConsumeContext context, Guid attemptId, TimeProvider time, TimeSpan interval) : IProgress<RenderProgress>
    {
        private long _last;

        public void Report(RenderProgress value)
        {
            var now = time.GetTimestamp();
            var last = Interlocked.Read(ref _last);
            if ((last != 0 && time.GetElapsedTime(last, now) < interval) || Interlocked.CompareExchange(ref _last, now, last) != last)
            {
                return;
            }

            // Progress is advisory: a lost progress message is replaced by the next one.
            _ = context.Publish(new TaskProgressed { AttemptId = attemptId, Completed = value.Completed, Total = value.Total });
        }
    }
}
