namespace ProgrammableFilm.Domain.Specs;

/// <summary>A validated job: what a studio asked for, with every default filled in.</summary>
public sealed record JobSpec(string Project, string? Name, Lane Lane, int Priority, IReadOnlyList<ShotSpec> Shots)
{
    /// <summary>How many times a task that fails transiently (or runs out of memory) is retried.</summary>
    public int Retries { get; init; } = SpecLimits.DefaultRetries;

    /// <summary>Jobs this one waits for; the spec reader checks only their form, submission checks that they exist.</summary>
    public IReadOnlyList<Guid> After { get; init; } = [];

    /// <summary>The shots were reduced by <see cref="PreviewPolicy"/>: what a CI run renders to check a spec.</summary>
    public bool Preview { get; init; }

    /// <summary>The sequence's consistency anchors (<c>anchors:</c>), already applied to the shots that inherit them.</summary>
    public AnchorSpec? Anchors { get; init; }

    /// <summary>The job's own budget (<c>budget:</c>), written with the job; null for none (its project's still applies).</summary>
    public JobBudgetSpec? Budget { get; init; }
}

/// <summary>
/// A job's own budget as its spec gives it: the fields of <c>PUT /api/jobs/{id}/budget</c>, the limit in dollars and
/// the soft threshold as a fraction of it (defaulted).
/// </summary>
public sealed record JobBudgetSpec(decimal LimitUsd, double SoftFraction);

/// <summary>
/// A sequence's consistency anchors: its background (the palette and colour treatment of every shot), a recurring
/// object and that object's colour, and the seed family. A shot inherits them unless it overrides them: its own
/// prompt naming a background, object or colour wins (the scene parser keeps the first phrase of a slot, and the
/// anchors are appended after the prompt), its own <c>seed:</c> wins, and <c>anchors: false</c> opts out.
/// </summary>
public sealed record AnchorSpec(string? Background, string? Object, string? Colour, long? Seed)
{
    /// <summary>The prompt with the anchors' phrases after it: <c>{prompt}, red car in the snow</c>.</summary>
    public string ApplyTo(string prompt)
    {
        var thing = string.Join(' ', new[] { Colour, Object }.OfType<string>());
        var parts = new[] { thing.Length == 0 ? null : thing, Background is null ? null : $"in the {Background}" }.OfType<string>().ToList();
        return parts.Count == 0 ? prompt : $"{prompt}, {string.Join(' ', parts)}";
    }
}

/// <summary>A validated shot.</summary>
public sealed record ShotSpec
{
    public required string Name { get; init; }

    public required string Prompt { get; init; }

    public required double DurationSeconds { get; init; }

    public required int Fps { get; init; }

    public required int Width { get; init; }

    public required int Height { get; init; }

    public required int Steps { get; init; }

    public required double Guidance { get; init; }

    public required long Seed { get; init; }

    public required string Engine { get; init; }

    /// <summary>Frames between consecutive keyframes.</summary>
    public required int KeyframeInterval { get; init; }

    /// <summary>
    /// The frame-rate multiplier applied after assembly (<c>interpolate:</c>, 1 to 4): the shot renders
    /// <see cref="Fps"/> frames a second and its MP4 plays <see cref="Fps"/> × this, the frames between made by
    /// motion-compensated interpolation. 1 renders the MP4 at <see cref="Fps"/>.
    /// </summary>
    public int Interpolate { get; init; } = 1;

    /// <summary>The job's anchors this shot inherited (its prompt and seed already include them), or null.</summary>
    public AnchorSpec? Anchors { get; init; }

    /// <summary>The camera plate the shot starts from (<c>plate:</c>), or null for a shot generated from the prompt alone.</summary>
    public PlateSpec? Plate { get; init; }

    /// <summary>Frames in the shot: duration × fps, rounded half away from zero.</summary>
    public int FrameCount => ShotFrames.Count(DurationSeconds, Fps);

    /// <summary>The sweep the shot declares (<c>variants:</c>); empty renders the shot as one take.</summary>
    public IReadOnlyList<VariantSpec> Variants { get; init; } = [];

    /// <summary>
    /// What the shot renders: one take per variant (its overrides applied to this spec, numbered from 1), or the
    /// shot itself as its only take.
    /// </summary>
    public IReadOnlyList<(VariantSpec Overrides, ShotSpec Take)> Takes() =>
        Variants.Count == 0 ? [(VariantSpec.None, this with { Variants = [] })] : [.. Variants.Select(v => (v, v.ApplyTo(this)))];
}

/// <summary>
/// One variant of a shot: the parameters it overrides, every other one taken from the shot. The sweepable
/// parameters are these; later kinds of override (anchors, plates) add fields here and to <see cref="ApplyTo"/>.
/// </summary>
public sealed record VariantSpec
{
    public static VariantSpec None { get; } = new();

    public long? Seed { get; init; }

    public double? Guidance { get; init; }

    public int? Steps { get; init; }

    public int? KeyframeInterval { get; init; }

    public string? Engine { get; init; }

    /// <summary>Words appended to the shot's prompt (after a comma), e.g. <c>at dusk</c>.</summary>
    public string? PromptFragment { get; init; }

    public bool IsEmpty() => this == None;

    public ShotSpec ApplyTo(ShotSpec shot) => shot with
    {
        Seed = Seed ?? shot.Seed,
        Guidance = Guidance ?? shot.Guidance,
        Steps = Steps ?? shot.Steps,
        KeyframeInterval = KeyframeInterval ?? shot.KeyframeInterval,
        Engine = Engine ?? shot.Engine,
        Prompt = PromptFragment is null ? shot.Prompt : $"{shot.Prompt}, {PromptFragment}",
        Variants = [],
    };
}

/// <summary>
/// A camera plate (real footage) a shot starts from: each keyframe is sampled from the plate's frame of the same
/// index, noised to <see cref="Strength"/> and denoised from there (0 keeps the plate, 1 ignores it).
/// <see cref="Id"/> names an uploaded plate (the API); <see cref="Path"/> a file or folder on this machine, which
/// <c>pfilm render</c> ingests and replaces by its id before submitting. A <see cref="Schedule"/> gives each keyframe
/// its own strength, in keyframe order, the last one holding for the keyframes after it (<see cref="Strength"/> is
/// then its first).
/// </summary>
public sealed record PlateSpec(Guid? Id, string? Path, double Strength, IReadOnlyList<double>? Schedule = null)
{
    /// <summary>The strength of the keyframe at <paramref name="keyframeIndex"/> (0 is the shot's first keyframe).</summary>
    public static double StrengthAt(double strength, IReadOnlyList<double>? schedule, int keyframeIndex) =>
        schedule is { Count: > 0 } ? schedule[Math.Min(keyframeIndex, schedule.Count - 1)] : strength;

    /// <summary>The schedule as stored (comma-separated, invariant culture); null for one strength.</summary>
    public static string? Format(IReadOnlyList<double>? schedule) =>
        schedule is null ? null : string.Join(',', schedule.Select(s => s.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));

    public static IReadOnlyList<double>? Parse(string? stored) =>
        stored is null ? null : [.. stored.Split(',').Select(s => double.Parse(s, System.Globalization.CultureInfo.InvariantCulture))];
}

/// <summary>Scheduling lane: previews always go before batch renders.</summary>
public enum Lane
{
    Preview,
    Batch,
}

/// <summary>How many frames a duration holds.</summary>
public static class ShotFrames
{
    public static int Count(double durationSeconds, int fps) =>
        (int)Math.Min(int.MaxValue, Math.Round(durationSeconds * fps, MidpointRounding.AwayFromZero));
}
