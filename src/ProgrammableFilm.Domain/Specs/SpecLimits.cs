namespace ProgrammableFilm.Domain.Specs;

/// <summary>The limits a spec is validated against; the README documents the same numbers.</summary>
public static class SpecLimits
{
    public const int MaxShotsPerJob = 100;
    public const int MaxPromptLength = 1000;
    public const double MaxDurationSeconds = 600;
    public const int MinFps = 1;
    public const int MaxFps = 120;
    public const int MaxFramesPerShot = 10_000;
    public const int MinDimension = 64;
    public const int MaxDimension = 4096;
    public const int DimensionMultiple = 8;
    public const int MaxPixelsPerFrame = 3840 * 2160;
    public const int MinSteps = 1;
    public const int MaxSteps = 200;
    public const double MinGuidance = 0;
    public const double MaxGuidance = 30;
    public const int MinPriority = 0;
    public const int MaxPriority = 100;
    public const int MinKeyframeInterval = 1;
    public const int MaxKeyframeInterval = 240;
    public const long MaxSeed = (1L << 53) - 1;

    public const int DefaultPriority = 50;
    public const int DefaultSteps = 20;
    public const double DefaultGuidance = 3.0;
    public const int DefaultKeyframeInterval = 12;
    public const string DefaultEngine = "procedural";

    /// <summary>Engines a worker offers; a shot naming another is rejected before anything is written.</summary>
    public static readonly IReadOnlyList<string> Engines = ["procedural", "diffusion"];
}
