using System.Globalization;

namespace ProgrammableFilm.Worker.Energy;

/// <summary>One GPU's line of <c>nvidia-smi --query-gpu=index,power.draw,total_energy_consumption --format=csv,noheader,nounits</c>.</summary>
/// <param name="PowerWatts">The board's draw now; null when the GPU does not report it.</param>
/// <param name="TotalEnergyJoules">Energy since the driver loaded (Volta and later; reported in mJ); null when not supported.</param>
public sealed record GpuReading(int Index, double? PowerWatts, double? TotalEnergyJoules);

/// <summary>One RAPL package domain: its counter in microjoules and where the counter wraps.</summary>
public sealed record RaplReading(string Domain, long EnergyMicrojoules, long MaxRangeMicrojoules);

/// <summary>Parsers of what the devices report, kept apart from the reading so that they are tested on recorded outputs.</summary>
public static class EnergyReadings
{
    /// <summary>The query every nvidia-smi read runs.</summary>
    public const string NvidiaSmiQuery = "--query-gpu=index,power.draw,total_energy_consumption --format=csv,noheader,nounits";

    /// <summary>
    /// Parses nvidia-smi's CSV: one GPU per line, fields separated by ", ". A field the GPU cannot report reads
    /// <c>[N/A]</c> or <c>[Not Supported]</c> (some versions print <c>N/A</c>): that value is null, the rest of the line
    /// still counts. A line that is not three fields with a whole index (a warning nvidia-smi printed instead) is skipped.
    /// </summary>
    public static IReadOnlyList<GpuReading> ParseNvidiaSmi(string output)
    {
        var readings = new List<GpuReading>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = line.Split(',', StringSplitOptions.TrimEntries);
            if (fields.Length != 3 || !int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                continue;
            }

            readings.Add(new GpuReading(index, Number(fields[1]), Number(fields[2]) / 1000));
        }

        return readings;
    }

    /// <summary>
    /// The joules a counter advanced from <paramref name="before"/> to <paramref name="after"/>; a counter that went
    /// backwards wrapped at <paramref name="maxRange"/> (RAPL) or was reset (a driver reload): then only what was
    /// counted since the wrap is known.
    /// </summary>
    public static long Advance(long before, long after, long maxRange) =>
        after >= before ? after - before : maxRange > 0 && before <= maxRange ? maxRange - before + after : after;

    /// <summary>Reads a RAPL file's number; null when it is absent, unreadable (root-only on many kernels) or not a number.</summary>
    public static long? ParseCounter(string? text) =>
        long.TryParse(text?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;

    private static double? Number(string field) =>
        double.TryParse(field, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) && value >= 0 ? value : null;
}
