using System.Diagnostics;

namespace ProgrammableFilm.Worker.Energy;

/// <summary>
/// A device's own energy counter: joules counted since some start, never going backwards in this process. Null from
/// <see cref="ReadJoules"/> means the device could not be read this time.
/// </summary>
public interface IEnergyMeter
{
    /// <summary>What is measured, for the attempt's log and the manifest (<c>nvidia-smi energy counter</c>, <c>rapl</c>).</summary>
    string Source { get; }

    double? ReadJoules();
}

/// <summary>
/// RAPL package counters under <c>/sys/class/powercap</c> (Intel, and AMD Zen with the <c>intel-rapl</c> driver): the
/// top-level <c>intel-rapl:N</c> domains, one per socket, summed. A package is shared by every core, so a worker that
/// holds only some of them is credited its share (cores held / cores present).
/// </summary>
public sealed class RaplMeter : IEnergyMeter
{
    private readonly string[] _domains;
    private readonly double _share;
    private readonly Lock _gate = new();
    private readonly long[] _last;
    private double _joules;

    private RaplMeter(string[] domains, long[] first, double share)
    {
        _domains = domains;
        _last = first;
        _share = share;
    }

    public string Source => "rapl";

    /// <summary>The meter over <paramref name="powercapRoot"/>, or null when no package counter there is readable.</summary>
    public static RaplMeter? Open(string powercapRoot, int coresHeld, int coresPresent)
    {
        if (!Directory.Exists(powercapRoot))
        {
            return null;
        }

        var domains = Directory.GetDirectories(powercapRoot, "intel-rapl:*")
            .Where(d => Path.GetFileName(d).Count(c => c == ':') == 1)
            .Order(StringComparer.Ordinal)
            .ToArray();
        var first = domains.Select(d => Read(Path.Combine(d, "energy_uj"))).ToArray();
        if (domains.Length == 0 || first.Any(v => v is null))
        {
            return null;
        }

        return new RaplMeter(domains, [.. first.Select(v => v!.Value)], Math.Clamp((double)coresHeld / Math.Max(1, coresPresent), 0, 1));
    }

    public double? ReadJoules()
    {
        lock (_gate)
        {
            for (var i = 0; i < _domains.Length; i++)
            {
                if (Read(Path.Combine(_domains[i], "energy_uj")) is not { } now)
                {
                    return null;
                }

                var range = Read(Path.Combine(_domains[i], "max_energy_range_uj")) ?? 0;
                _joules += EnergyReadings.Advance(_last[i], now, range) / 1e6 * _share;
                _last[i] = now;
            }

            return _joules;
        }
    }

    private static long? Read(string file)
    {
        try
        {
            return EnergyReadings.ParseCounter(File.ReadAllText(file));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>
/// The GPUs' energy through <c>nvidia-smi</c>, summed over the GPUs this worker uses (<c>CUDA_VISIBLE_DEVICES</c> when it
/// names indices, else all). It uses the driver's total-energy counter where every GPU has one; otherwise it samples
/// the power draw every second and integrates it (the trapezoid rule), which is what older boards allow.
/// </summary>
public sealed class NvidiaSmiMeter : IEnergyMeter, IDisposable
{
    private static readonly TimeSpan SampleEvery = TimeSpan.FromSeconds(1);
    private readonly Func<string?> _query;
    private readonly HashSet<int>? _gpus;
    private readonly bool _counter;
    private readonly Lock _gate = new();
    private readonly Timer? _sampler;
    private double? _lastCounter;
    private double _joules;
    private (long At, double Watts)? _lastPower;

    private NvidiaSmiMeter(Func<string?> query, HashSet<int>? gpus, bool counter)
    {
        _query = query;
        _gpus = gpus;
        _counter = counter;
        _sampler = counter ? null : new Timer(_ => ReadJoules(), null, SampleEvery, SampleEvery);
    }

    public string Source => _counter ? "nvidia-smi energy counter" : "nvidia-smi power samples";

    /// <summary>
    /// The meter, or null when nvidia-smi is absent, fails, or reports neither energy nor power for the GPUs used.
    /// <paramref name="query"/> runs nvidia-smi and returns its output (null on failure); tests pass recorded outputs.
    /// </summary>
    public static NvidiaSmiMeter? Open(Func<string?> query, string? visibleDevices)
    {
        var gpus = VisibleGpus(visibleDevices);
        var readings = Used(query(), gpus);
        if (readings.Count == 0)
        {
            return null;
        }

        if (readings.All(r => r.TotalEnergyJoules is not null))
        {
            var meter = new NvidiaSmiMeter(query, gpus, counter: true);
            meter._lastCounter = readings.Sum(r => r.TotalEnergyJoules!.Value);
            return meter;
        }

        return readings.All(r => r.PowerWatts is not null) ? new NvidiaSmiMeter(query, gpus, counter: false) : null;
    }

    public double? ReadJoules()
    {
        var readings = Used(_query(), _gpus);
        lock (_gate)
        {
            if (readings.Count == 0)
            {
                return null;
            }

            if (_counter)
            {
                if (readings.Any(r => r.TotalEnergyJoules is null))
                {
                    return null;
                }

                var total = readings.Sum(r => r.TotalEnergyJoules!.Value);
                _joules += _lastCounter is { } last && total >= last ? total - last : 0;
                _lastCounter = total;
                return _joules;
            }

            if (readings.Any(r => r.PowerWatts is null))
            {
                return null;
            }

            var now = Stopwatch.GetTimestamp();
            var watts = readings.Sum(r => r.PowerWatts!.Value);
            if (_lastPower is { } previous)
            {
                _joules += (previous.Watts + watts) / 2 * Stopwatch.GetElapsedTime(previous.At, now).TotalSeconds;
            }

            _lastPower = (now, watts);
            return _joules;
        }
    }

    public void Dispose() => _sampler?.Dispose();

    /// <summary>Runs nvidia-smi once; null when it is not installed or fails (no driver, no GPU).</summary>
    public static string? RunNvidiaSmi()
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("nvidia-smi", EnergyReadings.NvidiaSmiQuery) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (process is null)
            {
                return null;
            }

            var output = process.StandardOutput.ReadToEndAsync();
            if (!process.WaitForExit(5_000))
            {
                process.Kill();
                return null;
            }

            return process.ExitCode == 0 ? output.Result : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static HashSet<int>? VisibleGpus(string? visibleDevices)
    {
        if (string.IsNullOrWhiteSpace(visibleDevices))
        {
            return null;
        }

        var indices = visibleDevices.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        // UUIDs (GPU-…) or MIG names cannot be matched to indices here: count every GPU rather than none.
        return indices.All(i => int.TryParse(i, out _)) ? [.. indices.Select(int.Parse)] : null;
    }

    private static List<GpuReading> Used(string? output, HashSet<int>? gpus) =>
        output is null ? [] : [.. EnergyReadings.ParseNvidiaSmi(output).Where(r => gpus is null || gpus.Contains(r.Index))];
}

/// <summary>Picks the worker's meter from <see cref="WorkerOptions.EnergyMeter"/>.</summary>
public static class EnergyMeterChoice
{
    /// <summary>
    /// <c>auto</c> (the default): RAPL for a <c>cpu</c> SKU, nvidia-smi for any other; <c>rapl</c> or <c>nvidia-smi</c>
    /// to insist; <c>none</c> to estimate. Null when the chosen counter cannot be read here: energy is then estimated.
    /// </summary>
    public static IEnergyMeter? Open(WorkerOptions options) => (options.EnergyMeter ?? "auto").ToLowerInvariant() switch
    {
        "none" => null,
        "rapl" => Rapl(options),
        "nvidia-smi" => Nvidia(),
        "auto" or "" => options.DeviceSku == "cpu" ? Rapl(options) : Nvidia(),
        var other => throw new ArgumentException($"Worker:EnergyMeter is '{other}'; use auto, rapl, nvidia-smi or none."),
    };

    private static RaplMeter? Rapl(WorkerOptions options) => RaplMeter.Open(options.PowercapRoot, options.DeviceCount, Environment.ProcessorCount);

    private static NvidiaSmiMeter? Nvidia() => NvidiaSmiMeter.Open(NvidiaSmiMeter.RunNvidiaSmi, Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES"));
}
