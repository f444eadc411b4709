using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Diffusion;
using ProgrammableFilm.Engine.Torch;

namespace ProgrammableFilm.Worker;

/// <summary>
/// The diffusion implementation this worker uses and the device it renders on, as its heartbeats report them (the
/// scheduler's pools and placement read the name and memory).
/// </summary>
public sealed class WorkerDevice
{
    private readonly Lazy<(string Name, long MemoryBytes)> _description;

    private WorkerDevice(string diffusionEngine)
    {
        DiffusionEngine = diffusionEngine;

        // The TorchSharp engine's device is known once LibTorch is loaded (about a second, and the CUDA query); asked
        // on the first heartbeat, not in the constructor, so start-up stays quick.
        _description = new(() =>
        {
            if (DiffusionEngine != "torch")
            {
                return (CpuDevice.Name(), CpuDevice.MemoryBytes());
            }

            try
            {
                var info = TorchDevices.Resolve();
                return ($"{info.Name} [{info.Device}, {info.Precision}]", info.MemoryBytes);
            }
            catch (Exception e) when (e is InvalidOperationException or DllNotFoundException or NotSupportedException)
            {
                // The worker still heartbeats (a heartbeat must never fail on this); its diffusion tasks fail with the reason.
                return ($"unavailable: {e.Message}", 0);
            }
        });
    }

    /// <summary><c>native</c> or <c>torch</c>.</summary>
    public string DiffusionEngine { get; }

    /// <summary>The device's name (GPU model, or CPU model and cores), with the LibTorch device and precision for <c>torch</c>.</summary>
    public string Name => _description.Value.Name;

    /// <summary>Device memory in bytes (GPU memory, or the RAM available to the process).</summary>
    public long MemoryBytes => _description.Value.MemoryBytes;

    /// <summary>
    /// Resolves <see cref="WorkerOptions.DiffusionEngine"/>: <c>auto</c> is <c>torch</c> when TorchSharp's CUDA libraries
    /// and a GPU are present (checked from files, LibTorch is not loaded), else <c>native</c>, the faster engine on a CPU.
    /// </summary>
    public static WorkerDevice Choose(WorkerOptions options) => (options.DiffusionEngine ?? "auto").ToLowerInvariant() switch
    {
        "auto" or "" => new WorkerDevice(TorchDevices.CudaLikelyPresent() ? "torch" : "native"),
        "native" => new WorkerDevice("native"),
        "torch" => new WorkerDevice("torch"),
        var other => throw new ArgumentException($"Worker:DiffusionEngine is '{other}'; use native, torch or auto."),
    };

    /// <summary>
    /// The <c>diffusion</c> engine of the chosen implementation; its model loads on the first diffusion task. The native
    /// engine computes on as many threads as the cores an attempt holds and is billed for
    /// (<see cref="WorkerOptions.DeviceCount"/>), so one-core workers sharing a machine do not each spread over all of it.
    /// </summary>
    public IRenderEngine CreateDiffusionEngine(WorkerOptions options) => DiffusionEngine == "torch"
        ? TorchDiffusion.CreateEngine(new TorchEngineOptions { ModelPath = options.ModelPath })
        : new DiffusionEngine(new DiffusionEngineOptions { ModelPath = options.ModelPath, Threads = Math.Max(1, options.DeviceCount) });
}
