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

    /// <summary>The largest frame-rate multiplier: past 4 the interpolated frames outnumber the rendered ones too far to hold motion.</summary>
    public const int MaxInterpolate = 4;

    /// <summary>How far a keyframe departs from its plate frame unless the spec says: enough to restyle, not to relayout.</summary>
    public const double DefaultPlateStrength = 0.6;

    /// <summary>A plate's strength schedule holds at most one value per keyframe of the longest shot.</summary>
    public const int MaxPlateSchedule = MaxFramesPerShot;

    /// <summary>An anchor is a vocabulary phrase (<c>sunset sky</c>, <c>sports car</c>): a few words.</summary>
    public const int MaxAnchorLength = 40;
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
    public const int MaxRetries = 10;
    public const int MaxJobDependencies = 20;

    /// <summary>
    /// Takes one shot may sweep (a list's length, or a grid's product, counted before it is expanded). Every take is
    /// a full render billed to the project, so a typo in a grid (<c>seed: [1..1000]</c>) must not become a thousand
    /// renders; 24 covers a 6×4 or 3×2×4 sweep. A compile-time limit, like every spec limit, so that the CLI, the API
    /// and the README agree.
    /// </summary>
    public const int MaxVariantsPerShot = 24;

    /// <summary>
    /// Tasks a job may plan (every shot's keyframes, segments and assembly). The largest valid shots (10,000 one-frame
    /// keyframes) allow 100 of them to plan 1,000,100; the bound keeps one job's plan to what PostgreSQL writes in
    /// one transaction in seconds, not minutes.
    /// </summary>
    public const int MaxTasksPerJob = 1_000_000;

    /// <summary>
    /// Nesting a spec may use. A valid spec nests 3 levels (job, shots, shot); the bound keeps the parsers' work
    /// proportional to the text and stops a 10,000-deep document long before any stack could overflow.
    /// </summary>
    public const int MaxNestingDepth = 32;

    /// <summary>
    /// Values a spec may hold once YAML aliases are expanded. The largest valid spec holds about 1,250 (100 shots of a
    /// dozen fields, 20 dependencies); the bound leaves room for that eight times over and stops an alias bomb
    /// ("billion laughs") after a few thousand steps instead of exhausting memory.
    /// </summary>
    public const int MaxSpecNodes = 10_000;

    public const int DefaultPriority = 50;
    public const int DefaultSteps = 20;
    public const double DefaultGuidance = 3.0;
    public const int DefaultKeyframeInterval = 12;
    public const int DefaultRetries = 3;
    public const string DefaultEngine = "procedural";

    /// <summary>Engines a worker offers; a shot naming another is rejected before anything is written.</summary>
    public static readonly IReadOnlyList<string> Engines = ["procedural", "diffusion"];
}
