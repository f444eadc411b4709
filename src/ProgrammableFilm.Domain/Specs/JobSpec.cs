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

    /// <summary>Frames in the shot: duration × fps, rounded half away from zero.</summary>
    public int FrameCount => ShotFrames.Count(DurationSeconds, Fps);
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
