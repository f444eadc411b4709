namespace ProgrammableFilm.Contracts;

/// <summary>
/// Command to a worker pool: run one attempt of one task. The attempt id is the fencing token for everything the
/// worker reports about it. The message may be delivered twice or after the attempt was superseded; the worker's
/// claim tells it whether to run.
/// </summary>
public sealed record RenderTask
{
    /// <summary>The attempt this message asks for; a new id per dispatch of the task.</summary>
    public required Guid AttemptId { get; init; }

    /// <summary>The task being attempted.</summary>
    public required Guid TaskId { get; init; }

    /// <summary>The job the task belongs to.</summary>
    public required Guid JobId { get; init; }

    /// <summary>The shot the task belongs to.</summary>
    public required Guid ShotId { get; init; }

    /// <summary><c>keyframe</c>, <c>segment</c> or <c>assemble</c>.</summary>
    public required string Kind { get; init; }

    /// <summary>The engine that renders the shot.</summary>
    public required string Engine { get; init; }

    /// <summary>The shot's prompt.</summary>
    public required string Prompt { get; init; }

    /// <summary>Output width in pixels.</summary>
    public required int Width { get; init; }

    /// <summary>Output height in pixels.</summary>
    public required int Height { get; init; }

    /// <summary>Frames per second of the shot.</summary>
    public required int Fps { get; init; }

    /// <summary>Sampler steps.</summary>
    public required int Steps { get; init; }

    /// <summary>Classifier-free guidance scale.</summary>
    public required double Guidance { get; init; }

    /// <summary>The shot's seed.</summary>
    public required long Seed { get; init; }

    /// <summary>Number of frames in the shot.</summary>
    public required int TotalFrames { get; init; }

    /// <summary>The frames this task renders (keyframe, segment) or encodes (assemble), ascending.</summary>
    public required int[] Frames { get; init; }

    /// <summary>For segments: the keyframe before the first frame.</summary>
    public int? StartKeyframe { get; init; }

    /// <summary>For segments: the keyframe after the last frame.</summary>
    public int? EndKeyframe { get; init; }

    /// <summary>Storage folder of the shot, relative to the storage root; frames live in <c>frames/</c> under it.</summary>
    public required string ShotFolder { get; init; }
}

/// <summary>Request from a worker to own an attempt before it spends device time on it.</summary>
public sealed record ClaimAttempt
{
    /// <summary>The attempt the worker wants to run.</summary>
    public required Guid AttemptId { get; init; }

    /// <summary>The worker's stable id.</summary>
    public required string WorkerId { get; init; }

    /// <summary>The worker's pool.</summary>
    public required string Pool { get; init; }

    /// <summary>The device SKU the attempt will run on (<c>cpu</c>, <c>h100-80g</c>, ...).</summary>
    public required string DeviceSku { get; init; }

    /// <summary>Devices the worker uses for one attempt (cores for <c>cpu</c>).</summary>
    public required int DeviceCount { get; init; }

    /// <summary>Host the worker runs on.</summary>
    public required string Hostname { get; init; }
}

/// <summary>The claim succeeded: the worker owns the attempt and must run it.</summary>
public sealed record AttemptClaimGranted
{
    /// <summary>The attempt now owned by the worker.</summary>
    public required Guid AttemptId { get; init; }
}

/// <summary>The claim was refused (duplicate delivery, already claimed, or superseded): the worker must not run it.</summary>
public sealed record AttemptClaimRefused
{
    /// <summary>The attempt that was refused.</summary>
    public required Guid AttemptId { get; init; }

    /// <summary>Why, for the worker's log.</summary>
    public required string Reason { get; init; }
}

/// <summary>Progress of a running attempt.</summary>
public sealed record TaskProgressed
{
    /// <summary>The attempt reporting.</summary>
    public required Guid AttemptId { get; init; }

    /// <summary>Units done (frames × steps).</summary>
    public required int Completed { get; init; }

    /// <summary>Units in all.</summary>
    public required int Total { get; init; }
}

/// <summary>Device usage of one attempt; the ledger bills it once per attempt.</summary>
public sealed record DeviceUsage
{
    /// <summary>The device SKU the attempt ran on.</summary>
    public required string DeviceSku { get; init; }

    /// <summary>Devices held by the attempt (cores for <c>cpu</c>).</summary>
    public required int DeviceCount { get; init; }

    /// <summary>Wall seconds × devices.</summary>
    public required double DeviceSeconds { get; init; }

    /// <summary>Energy used, in joules.</summary>
    public required double EnergyJoules { get; init; }

    /// <summary>True when the energy is estimated from rated power rather than measured.</summary>
    public required bool EnergyEstimated { get; init; }
}

/// <summary>An attempt finished and its outputs are in storage.</summary>
public sealed record TaskSucceeded
{
    /// <summary>The attempt reporting (fencing token).</summary>
    public required Guid AttemptId { get; init; }

    /// <summary>The worker that ran it.</summary>
    public required string WorkerId { get; init; }

    /// <summary>When the worker finished the attempt (the worker's clock); the coordinator's overhead is measured from here.</summary>
    public required DateTime ReportedAt { get; init; }

    /// <summary>What the attempt used.</summary>
    public required DeviceUsage Usage { get; init; }

    /// <summary>Output files, relative to the storage root.</summary>
    public required string[] Outputs { get; init; }

    /// <summary>Quality metrics (for example <c>flicker</c>).</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    /// <summary>Facts for the manifest reported by the engine.</summary>
    public IReadOnlyDictionary<string, string> Facts { get; init; } = new Dictionary<string, string>();

    /// <summary>Prompt words the engine did not know.</summary>
    public string[] UnknownWords { get; init; } = [];
}

/// <summary>An attempt failed.</summary>
public sealed record TaskFailed
{
    /// <summary>The attempt reporting (fencing token).</summary>
    public required Guid AttemptId { get; init; }

    /// <summary>The worker that ran it.</summary>
    public required string WorkerId { get; init; }

    /// <summary>When the worker finished the attempt (the worker's clock); the coordinator's overhead is measured from here.</summary>
    public required DateTime ReportedAt { get; init; }

    /// <summary>What the attempt used before failing (billed too: the device time was spent).</summary>
    public required DeviceUsage Usage { get; init; }

    /// <summary><c>transient</c>, <c>out-of-memory</c> or <c>fatal</c>.</summary>
    public required string Classification { get; init; }

    /// <summary>A one-line reason a person can act on.</summary>
    public required string Reason { get; init; }
}
