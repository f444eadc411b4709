using Microsoft.Extensions.Configuration;

namespace ProgrammableFilm.Worker;

/// <summary>Who this worker is and what it offers (section <c>Worker</c>).</summary>
public sealed record WorkerOptions
{
    /// <summary>Stable within the process; unique across the fleet.</summary>
    public string WorkerId { get; init; } = $"{Environment.MachineName.ToLowerInvariant()}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";

    public string Pool { get; init; } = "cpu";

    /// <summary>The device SKU billed for this worker's attempts.</summary>
    public string DeviceSku { get; init; } = "cpu";

    /// <summary>Devices one attempt holds: for <c>cpu</c>, cores, so device-seconds are core-seconds.</summary>
    public int DeviceCount { get; init; } = Environment.ProcessorCount;

    /// <summary>Attempts run at once.</summary>
    public int Slots { get; init; } = 1;

    public string FfmpegPath { get; init; } = "ffmpeg";

    /// <summary>
    /// Encode MP4s through FFmpeg's libraries loaded into the worker (when they are the version it knows) rather than
    /// by starting the ffmpeg program for each shot; false always starts the program.
    /// </summary>
    public bool EncodeInProcess { get; init; } = true;

    /// <summary>How often the worker tells the coordinator it lives; well under the coordinator's lease (30 s by default).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// How long the worker's own response queue may go without a consumer while the broker answers before the worker
    /// exits for its supervisor to start it again (<see cref="DeafBusWatchdog"/>); zero turns the watchdog off.
    /// </summary>
    public TimeSpan DeafBusLimit { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Path of the diffusion model's weights; null finds <c>models/pf-scene-v3.safetensors</c> above the binaries.</summary>
    public string? ModelPath { get; init; }

    /// <summary>
    /// URLs of the worker's small HTTP listener (<c>/health/live</c>, <c>/health/ready</c>, <c>/metrics</c>), for
    /// example <c>http://+:8081</c>; null (the default, and always in embedded mode) serves nothing.
    /// </summary>
    public string? HttpUrls { get; init; }

    /// <summary>
    /// Which implementation renders <c>diffusion</c> tasks (<c>Worker:DiffusionEngine</c>): <c>native</c> (the C# CPU
    /// engine), <c>torch</c> (TorchSharp: CUDA when present, else the CPU) or <c>auto</c>, the default: <c>torch</c> when
    /// TorchSharp's CUDA libraries and a GPU are present, else <c>native</c>.
    /// </summary>
    public string DiffusionEngine { get; init; } = "auto";

    /// <summary>
    /// The device memory the scheduler places work by (<c>Worker:DeviceMemoryMiB</c>); null reports what the device
    /// says. Set it to keep headroom on a shared GPU, or to describe a pool of a certain size.
    /// </summary>
    public long? DeviceMemoryBytes { get; init; }

    /// <summary>The engines this worker offers (<c>Worker:Engines</c>, comma-separated); a pool gets only tasks all its workers can run.</summary>
    public IReadOnlyList<string> Engines { get; init; } = ["procedural", "diffusion"];

    /// <summary>Labels for the fleet view (<c>Worker:Tags</c>, comma-separated), such as the site or <c>spot</c>.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>
    /// Where attempts' energy comes from (<c>Worker:EnergyMeter</c>): <c>auto</c> (RAPL for a <c>cpu</c> SKU, nvidia-smi
    /// otherwise), <c>rapl</c>, <c>nvidia-smi</c> or <c>none</c>; when the counter cannot be read, energy is estimated
    /// from the SKU's rated watts and marked estimated.
    /// </summary>
    public string EnergyMeter { get; init; } = "auto";

    /// <summary>Where the RAPL counters are (<c>Worker:PowercapRoot</c>).</summary>
    public string PowercapRoot { get; init; } = "/sys/class/powercap";

    public static WorkerOptions FromConfiguration(IConfiguration configuration)
    {
        var defaults = new WorkerOptions();
        var section = configuration.GetSection("Worker");
        return new WorkerOptions
        {
            WorkerId = section["Id"] ?? defaults.WorkerId,
            Pool = section["Pool"] ?? defaults.Pool,
            DeviceSku = section["DeviceSku"] ?? defaults.DeviceSku,
            DeviceCount = section.GetValue("DeviceCount", defaults.DeviceCount),
            Slots = section.GetValue("Slots", defaults.Slots),
            FfmpegPath = section["FfmpegPath"] ?? defaults.FfmpegPath,
            EncodeInProcess = section.GetValue("EncodeInProcess", defaults.EncodeInProcess),
            HeartbeatInterval = section.GetValue("HeartbeatInterval", defaults.HeartbeatInterval),
            DeafBusLimit = section.GetValue("DeafBusLimit", defaults.DeafBusLimit),
            ModelPath = section["ModelPath"],
            HttpUrls = section["HttpUrls"] is { Length: > 0 } urls ? urls : null,
            DiffusionEngine = section["DiffusionEngine"] ?? defaults.DiffusionEngine,
            DeviceMemoryBytes = section.GetValue<long?>("DeviceMemoryMiB") * 1024 * 1024,
            Engines = List(section["Engines"]) is { Count: > 0 } engines ? engines : defaults.Engines,
            Tags = List(section["Tags"]),
            EnergyMeter = section["EnergyMeter"] ?? defaults.EnergyMeter,
            PowercapRoot = section["PowercapRoot"] ?? defaults.PowercapRoot,
        };
    }

    private static List<string> List(string? commaSeparated) =>
        [.. (commaSeparated ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
}
