using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Diffusion;

namespace ProgrammableFilm.Worker;

/// <summary>
/// Loads the diffusion model while the worker process starts, before its bus consumes anything: the load is not billed
/// to a shot, and <see cref="WorkerRehearsal"/> (after it) compiles the kernels with the rest of a task's path.
/// Registered only in the worker process (embedded mode still loads on first use) and only when the worker offers the
/// diffusion engine.
/// </summary>
public sealed class DiffusionWarmup(IEnumerable<IRenderEngine> engines, WorkerOptions options, ILogger<DiffusionWarmup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Engines.Contains("diffusion", StringComparer.Ordinal) || engines.OfType<DiffusionEngine>().FirstOrDefault() is not { } diffusion)
        {
            return;
        }

        var started = TimeProvider.System.GetTimestamp();
        try
        {
            await Task.Run(diffusion.LoadModel, cancellationToken);
            logger.LogInformation("Diffusion model loaded in {Seconds:F1} s", TimeProvider.System.GetElapsedTime(started).TotalSeconds);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or InvalidOperationException or DllNotFoundException or NotSupportedException)
        {
            // The worker still serves procedural work; its diffusion tasks fail with this reason, as they would have.
            logger.LogWarning("Diffusion model not loaded at start: {Reason}", e.Message);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
