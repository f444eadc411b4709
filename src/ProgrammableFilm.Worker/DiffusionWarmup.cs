using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Diffusion;

namespace ProgrammableFilm.Worker;

/// <summary>
/// Loads the diffusion model while the worker process starts, before its bus consumes anything: the first diffusion
/// task of a fresh worker then renders at full speed, and the load is not billed to a shot. Registered only in the
/// worker process (embedded mode still loads on first use) and only when the worker offers the diffusion engine.
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
            var model = await Task.Run(diffusion.LoadModel, cancellationToken);
            var loaded = TimeProvider.System.GetElapsedTime(started);
            await CompileKernelsAsync(diffusion, model.Config.ImageSize, cancellationToken);
            logger.LogInformation("Diffusion model loaded in {Seconds:F1} s, its kernels warmed in {Warm:F1} s", loaded.TotalSeconds, (TimeProvider.System.GetElapsedTime(started) - loaded).TotalSeconds);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or InvalidOperationException or DllNotFoundException or NotSupportedException)
        {
            // The worker still serves procedural work; its diffusion tasks fail with this reason, as they would have.
            logger.LogWarning("Diffusion model not loaded at start: {Reason}", e.Message);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// The worker process compiles every method fully optimised on its first call (no tiered compilation, see the
    /// project file), so one small keyframe and one in-between render compile every kernel the first task would have
    /// waited for (a fresh worker's first one-frame keyframe took 0.3 s of device time without any warm-up; the same
    /// request takes 0.05 s on a warm thread).
    /// </summary>
    private static async Task CompileKernelsAsync(DiffusionEngine diffusion, int size, CancellationToken cancellationToken)
    {
        var keyframe = await diffusion.RenderAsync(WarmupRequest(size, [0]), null, cancellationToken);
        var image = keyframe.Frames[0].Image;
        await diffusion.RenderAsync(
            WarmupRequest(size, [1, 2]) with { StartKeyframe = new ConditioningFrame(0, image), EndKeyframe = new ConditioningFrame(3, image) },
            null,
            cancellationToken);
    }

    private static RenderRequest WarmupRequest(int size, int[] frames) => new()
    {
        Prompt = "a red ball in the desert", Width = size, Height = size, Steps = 4, Guidance = 3, Seed = 1, TotalFrames = 4, FrameIndices = frames,
    };
}
