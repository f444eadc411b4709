using ProgrammableFilm.Domain.Costs;
using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Domain.Takes;

namespace ProgrammableFilm.Domain.Money;

/// <summary>
/// What makes two takes cost alike: the engine (its model: one per engine today), the frame size and, for engines
/// with a sampler, the steps. Accuracy is reported per kind.
/// </summary>
public readonly record struct QuoteKind(string Engine, int Width, int Height, int? Steps)
{
    public static QuoteKind Of(ShotSpec take) => new(take.Engine, take.Width, take.Height, EngineInputs.ReadsSampler(take.Engine) ? take.Steps : null);

    public override string ToString() => Steps is { } steps ? $"{Engine} {Width}x{Height} {steps} steps" : $"{Engine} {Width}x{Height}";
}

/// <summary>
/// A take's work, in the units the quote prices: frames for the rendering tasks (keyframes, segments), one per task
/// for assembly and interpolation (an ffmpeg run, whose cost at these sizes is mostly the run itself).
/// </summary>
public sealed record TakeWork(string Name, QuoteKind Kind, int FrameCount, int KeyframeFrames, int SegmentFrames, int LongestSegment, bool Interpolates)
{
    /// <summary>
    /// The takes of a shot as the planner will plan them: a take whose render inputs equal an earlier take's renders
    /// nothing itself (its keyframes and segments are that take's, billed there) and is quoted its assembly only.
    /// Takes that share only some tasks (another keyframe interval) are quoted in full.
    /// </summary>
    public static IReadOnlyList<TakeWork> Of(ShotSpec shot)
    {
        var seen = new HashSet<(string, string, long, int, int, int, int, int?, double?)>();
        var works = new List<TakeWork>();
        foreach (var (_, take) in shot.Takes())
        {
            var keyframes = ShotPlanner.Keyframes(take.FrameCount, take.KeyframeInterval);
            var longest = 0;
            for (var i = 0; i + 1 < keyframes.Count; i++)
            {
                longest = Math.Max(longest, keyframes[i + 1] - keyframes[i] - 1);
            }

            var sampled = EngineInputs.ReadsSampler(take.Engine);
            var reused = !seen.Add((take.Engine, take.Prompt, take.Seed, take.Width, take.Height, take.FrameCount, take.KeyframeInterval, sampled ? take.Steps : null, sampled ? take.Guidance : null));
            works.Add(new TakeWork(shot.Name, QuoteKind.Of(take), take.FrameCount, reused ? 0 : keyframes.Count, reused ? 0 : take.FrameCount - keyframes.Count, reused ? 0 : longest, take.Interpolate > 1));
        }

        return works;
    }
}

/// <summary>One task's total billed device time (every attempt of it) in a finished shot of the project.</summary>
public sealed record TaskSample(QuoteKind Kind, TaskKind TaskKind, Guid ShotId, int Frames, double DeviceSeconds);

/// <summary>Device-seconds for one take, expected and its range, and where the figures came from.</summary>
public sealed record TakeEstimate(TakeWork Work, string Basis, int HistoryShots, double DeviceSeconds, double LowDeviceSeconds, double HighDeviceSeconds, double CriticalPathDeviceSeconds);

/// <summary>The fleet a quote runs on: the devices of the live workers and how many devices one attempt holds.</summary>
public sealed record FleetCapacity(int Devices, double DevicesPerAttempt);

/// <summary>A priced quote.</summary>
public sealed record QuoteFigures(
    string DeviceSku,
    decimal DollarsPerHour,
    double DeviceSeconds,
    double LowDeviceSeconds,
    double HighDeviceSeconds,
    decimal Cost,
    decimal LowCost,
    decimal HighCost,
    double EnergyKwh,
    double? WallSeconds,
    IReadOnlyList<TakeEstimate> Takes);

/// <summary>
/// Device-seconds per unit of work, by engine and task kind, before a project has history: the prior. Measured on
/// the development machines' CPU workers (docs/performance.md); an operator with other devices gets a few shots of
/// history quickly, after which the prior no longer matters.
/// </summary>
public sealed record EngineRates(double PerFrame, double PerFramePerMegapixel, double PerFramePerStep, double PerRun, double PerRunPerMegapixelFrame)
{
    public static EngineRates Procedural { get; } = new(0.02, 0.8, 0, 0.35, 0.05);

    public static EngineRates Diffusion { get; } = new(0.03, 0, 0.012, 0.45, 0.05);

    public static EngineRates For(string engine) => engine == "procedural" ? Procedural : Diffusion;

    public double Rate(QuoteKind kind, TaskKind task, int frames)
    {
        var megapixels = kind.Width * (double)kind.Height / 1e6;
        return task is TaskKind.Keyframe or TaskKind.Segment
            ? PerFrame + (PerFramePerMegapixel * megapixels) + (PerFramePerStep * (kind.Steps ?? 0))
            : PerRun + (PerRunPerMegapixelFrame * megapixels * frames);
    }
}

/// <summary>
/// The quote: for each take, each task kind's work times the project's own measured device-seconds per unit for that
/// kind of take (<see cref="Rate"/>: a recency-weighted median of the tasks of its latest finished shots, outliers
/// set aside; the range from their weighted 10th to 90th percentile), or the engine's prior rate (range ×0.5 to ×2)
/// while the kind has fewer than <see cref="MinHistoryShots"/> finished shots.
/// Pure: the coordinator reads the history, the fleet and the price, and stores what this returns.
/// </summary>
public static class QuoteModel
{
    public const int MinHistoryShots = 3;

    /// <summary>
    /// The latest shots of a kind whose tasks the rates are drawn from: enough for a steady median, few enough that
    /// the rates follow the fleet as it is now (devices replaced, a new release, a busier machine).
    /// </summary>
    public const int RecentShots = 20;

    /// <summary>
    /// How fast a shot's weight in the rate fades: it halves every this many newer shots. Device time is wall time,
    /// so a task's bill follows whatever else its device runs (another tenant, a busier coordinator, a worker still
    /// compiling its code): the newest shots say most about the next one, and the older ones keep a few noisy shots
    /// from deciding alone.
    /// </summary>
    public const double HalfLifeShots = 5;

    /// <summary>
    /// Tasks further than this many (scaled) median absolute deviations from the median rate are set aside: a task
    /// that met a stall (a fresh worker's first runs, a machine briefly saturated) is rare and one-sided, and even a
    /// median drifts towards a one-sided tail.
    /// </summary>
    public const double OutlierMads = 3;

    public const double PriorLow = 0.5;

    public const double PriorHigh = 2.0;

    public static QuoteFigures Quote(IReadOnlyList<TakeWork> takes, IReadOnlyList<TaskSample> history, DevicePrice price, FleetCapacity? fleet)
    {
        var byKind = history.GroupBy(s => s.Kind).ToDictionary(g => g.Key, g => g.ToList());
        var estimates = takes.Select(take => Estimate(take, byKind.TryGetValue(take.Kind, out var samples) ? samples : [])).ToList();
        var deviceSeconds = estimates.Sum(e => e.DeviceSeconds);
        var low = estimates.Sum(e => e.LowDeviceSeconds);
        var high = estimates.Sum(e => e.HighDeviceSeconds);
        double? wall = fleet is { Devices: > 0 } f
            ? Math.Max(deviceSeconds / f.Devices, estimates.Select(e => e.CriticalPathDeviceSeconds).DefaultIfEmpty(0).Max() / Math.Max(1, f.DevicesPerAttempt))
            : null;
        return new QuoteFigures(
            price.Sku,
            price.DollarsPerHour,
            deviceSeconds,
            low,
            high,
            CostCalculator.Cost(deviceSeconds, price.DollarsPerHour),
            CostCalculator.Cost(low, price.DollarsPerHour),
            CostCalculator.Cost(high, price.DollarsPerHour),
            deviceSeconds * price.RatedWatts / 3.6e6,
            wall,
            estimates);
    }

    /// <summary>
    /// One take. The samples are the project's finished tasks of the take's kind, newest first; those of its latest
    /// <see cref="RecentShots"/> shots count. A task kind the history has not seen (segments, when every shot so far
    /// was one keyframe) is priced at its prior.
    /// </summary>
    public static TakeEstimate Estimate(TakeWork take, IReadOnlyList<TaskSample> samples)
    {
        var recent = samples.Select(s => s.ShotId).Distinct().Take(RecentShots).ToList();
        var inRecent = recent.ToHashSet();
        samples = [.. samples.Where(s => inRecent.Contains(s.ShotId))];
        var shots = recent.Count;
        var useHistory = shots >= MinHistoryShots;
        var prior = EngineRates.For(take.Kind.Engine);
        var parts = new List<(TaskKind Kind, double Units, double LongestUnits)>
        {
            (TaskKind.Keyframe, take.KeyframeFrames, Math.Min(1, take.KeyframeFrames)),
            (TaskKind.Segment, take.SegmentFrames, take.LongestSegment),
            (TaskKind.Assemble, 1, 1),
        };
        if (take.Interpolates)
        {
            parts.Add((TaskKind.Interpolate, 1, 1));
        }

        double expected = 0, low = 0, high = 0, critical = 0;
        int fromHistory = 0, fromPrior = 0;
        var ages = recent.Select((shot, age) => (shot, age)).ToDictionary(p => p.shot, p => p.age);
        foreach (var (kind, units, longest) in parts.Where(p => p.Units > 0))
        {
            var rates = useHistory
                ? samples.Where(s => s.TaskKind == kind).Select(s => (s.DeviceSeconds / UnitsOf(kind, s.Frames), ages[s.ShotId])).ToList()
                : [];
            double median, p10, p90;
            if (rates.Count > 0)
            {
                (median, p10, p90) = Rate(rates);
                fromHistory++;
            }
            else
            {
                median = prior.Rate(take.Kind, kind, take.FrameCount);
                (p10, p90) = (median * PriorLow, median * PriorHigh);
                fromPrior++;
            }

            expected += units * median;
            low += units * p10;
            high += units * p90;
            critical += longest * median;
        }

        var basis = fromPrior == 0 ? "history" : fromHistory == 0 ? "prior" : "history+prior";
        return new TakeEstimate(take, basis, useHistory ? shots : 0, expected, low, high, critical);
    }

    /// <summary>
    /// One task kind's device-seconds per unit from its tasks' rates, each with the age of its shot (0: the newest):
    /// the median of the tasks within <see cref="OutlierMads"/> of the median, each weighted by its shot's age
    /// (halving every <see cref="HalfLifeShots"/>); the range is the weighted 10th to 90th percentile of all of them,
    /// widened to hold the expected rate.
    /// </summary>
    public static (double Expected, double Low, double High) Rate(IReadOnlyList<(double Rate, int ShotAge)> tasks)
    {
        ArgumentOutOfRangeException.ThrowIfZero(tasks.Count);
        var sorted = tasks.Select(t => t.Rate).Order().ToList();
        var median = Quantile(sorted, 0.5);
        // 1.4826 × MAD estimates the standard deviation of normally distributed rates. Identical rates (MAD 0) have
        // nothing to set aside.
        var spread = 1.4826 * Quantile([.. sorted.Select(r => Math.Abs(r - median)).Order()], 0.5);
        var weighted = tasks.Select(t => (t.Rate, Weight: Math.Pow(0.5, t.ShotAge / HalfLifeShots))).ToList();
        var inliers = spread == 0 ? weighted : [.. weighted.Where(t => Math.Abs(t.Rate - median) <= OutlierMads * spread)];
        var expected = WeightedQuantile(inliers, 0.5);
        return (expected, Math.Min(expected, WeightedQuantile(weighted, 0.1)), Math.Max(expected, WeightedQuantile(weighted, 0.9)));
    }

    /// <summary>
    /// The q-quantile of weighted values: each value stands at the middle of its share of the total weight, and
    /// between two values the quantile is interpolated linearly (with equal weights, the median is the usual one).
    /// </summary>
    public static double WeightedQuantile(IReadOnlyList<(double Value, double Weight)> values, double q)
    {
        ArgumentOutOfRangeException.ThrowIfZero(values.Count);
        var sorted = values.OrderBy(v => v.Value).ToList();
        var total = sorted.Sum(v => v.Weight);
        var cumulative = 0.0;
        (double Position, double Value)? previous = null;
        foreach (var (value, weight) in sorted)
        {
            var position = (cumulative + (weight / 2)) / total;
            cumulative += weight;
            if (position >= q)
            {
                return previous is { } p && position > p.Position ? p.Value + ((value - p.Value) * (q - p.Position) / (position - p.Position)) : value;
            }

            previous = (position, value);
        }

        return sorted[^1].Value;
    }

    /// <summary>Frames for the rendering tasks; one per run for assembly and interpolation.</summary>
    public static double UnitsOf(TaskKind kind, int frames) => kind is TaskKind.Keyframe or TaskKind.Segment ? Math.Max(1, frames) : 1;

    /// <summary>Linear interpolation between the closest ranks of sorted values.</summary>
    public static double Quantile(IReadOnlyList<double> sorted, double q)
    {
        ArgumentOutOfRangeException.ThrowIfZero(sorted.Count);
        var position = q * (sorted.Count - 1);
        var below = (int)Math.Floor(position);
        var above = Math.Min(sorted.Count - 1, below + 1);
        return sorted[below] + ((sorted[above] - sorted[below]) * (position - below));
    }

    /// <summary>The median of |error|; null for no values.</summary>
    public static double? MedianAbsolute(IEnumerable<double> errors)
    {
        var sorted = errors.Select(Math.Abs).Order().ToList();
        return sorted.Count == 0 ? null : Quantile(sorted, 0.5);
    }

    /// <summary>(actual − quoted) / quoted; null when nothing was quoted.</summary>
    public static double? ErrorFraction(decimal quoted, decimal actual) => quoted <= 0 ? null : (double)((actual - quoted) / quoted);
}
