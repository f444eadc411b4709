using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Contracts;

namespace ProgrammableFilm.Worker;

/// <summary>
/// Tells the coordinator every <see cref="WorkerOptions.HeartbeatInterval"/> that this worker lives and which
/// attempts it holds (renewing their leases), hands over their new log lines, and stops the attempts the coordinator
/// no longer wants. A missed heartbeat costs nothing: the next one carries the same state.
/// </summary>
public sealed class HeartbeatService(
    IRequestClient<WorkerHeartbeat> heartbeats,
    RunningAttempts attempts,
    WorkerOptions options,
    WorkerDevice device,
    Energy.EnergyAccount energy,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<HeartbeatService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Finding the device may load LibTorch (the TorchSharp engine): off the host's start-up path.
        await Task.Run(() => device.Name, stoppingToken).ConfigureAwait(false);
        logger.LogInformation("Worker {WorkerId}: diffusion engine {Engine} on {Device} ({MemoryGiB:F1} GiB); energy {Energy}", options.WorkerId, device.DiffusionEngine, device.Name, device.MemoryBytes / (1024.0 * 1024 * 1024), energy.Source ?? "estimated from rated watts (no readable counter)");

        // The worker announces itself once the host has started: after its warm-up and rehearsal (nothing is dispatched
        // to it before they end) and its bus (a beat sent before would wait for it and time out).
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(stoppingToken).ConfigureAwait(false);
        }

        using var timer = new PeriodicTimer(options.HeartbeatInterval, time);
        do
        {
            try
            {
                await BeatAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("Heartbeat not acknowledged ({Error}); the next one carries the same state", e.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private async Task BeatAsync(CancellationToken cancellationToken)
    {
        // A counter read per beat keeps long attempts' shares exact and no RAPL counter wraps between two reads.
        energy.Sample();
        var held = attempts.Snapshot().Select(a => (Attempt: a, Log: a.UnsentLog())).ToList();
        var heartbeat = new WorkerHeartbeat
        {
            WorkerId = options.WorkerId,
            Pool = options.Pool,
            DeviceSku = options.DeviceSku,
            DeviceCount = options.DeviceCount,
            Slots = options.Slots,
            Hostname = Environment.MachineName,
            Attempts = [.. held.Select(h => new HeldAttempt { AttemptId = h.Attempt.AttemptId, Completed = h.Attempt.Completed, Total = h.Attempt.Total, DeviceSeconds = h.Attempt.DeviceSeconds, Log = h.Log })],
            DiffusionEngine = device.DiffusionEngine,
            DeviceName = device.Name,
            DeviceMemoryBytes = options.DeviceMemoryBytes ?? device.MemoryBytes,
            Engines = [.. options.Engines],
            Tags = [.. options.Tags],
        };
        var response = await heartbeats.GetResponse<HeartbeatAcknowledged>(heartbeat, cancellationToken, RequestTimeout.After(s: (int)Math.Max(5, options.HeartbeatInterval.TotalSeconds * 3)));
        foreach (var (attempt, log) in held.Where(h => h.Log.Length > 0))
        {
            attempt.Acknowledge(log[^1].Seq);
        }

        foreach (var stop in response.Message.Stop)
        {
            logger.LogInformation("Coordinator stops attempt {AttemptId}: {Reason}", stop.AttemptId, stop.Reason);
            attempts.Stop(stop.AttemptId, stop.Reason);
        }
    }
}
