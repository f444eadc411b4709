namespace ProgrammableFilm.Contracts;

/// <summary>
/// Command to a worker pool: run these attempts. Short tasks travel several to a message (the dispatcher bundles up to
/// about a second of expected work), so that the broker, the claim and the report cost a message per bundle rather
/// than per task; a long task travels alone. The message may be delivered twice or after some of its attempts were
/// superseded; the worker's claim tells it which to run.
/// </summary>
public sealed record RenderBundle
{
    /// <summary>The attempts, in the dispatcher's order; a worker starts them in this order as its slots free up.</summary>
    public required RenderTask[] Tasks { get; init; }
}

/// <summary>
/// One attempt of one task, as a <see cref="RenderBundle"/> carries it. The attempt id is the fencing token for
/// everything the worker reports about it.
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

    /// <summary><c>keyframe</c>, <c>segment</c>, <c>assemble</c> or <c>interpolate</c>.</summary>
    public required string Kind { get; init; }

    /// <summary>The engine that renders the shot.</summary>
    public required string Engine { get; init; }

    /// <summary>The shot's prompt.</summary>
    public required string Prompt { get; init; }

    /// <summary>Output width in pixels.</summary>
    public required int Width { get; init; }

    /// <summary>Output height in pixels.</summary>
    public required int Height { get; init; }

    /// <summary>Frames per second of the shot as rendered (before interpolation).</summary>
    public required int Fps { get; init; }

    /// <summary>
    /// The shot's frame-rate multiplier: above 1, assembly writes the base-rate video beside the take and the
    /// <c>interpolate</c> task writes the take's MP4 at <see cref="Fps"/> × this.
    /// </summary>
    public int Interpolate { get; init; } = 1;

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

    /// <summary>For assembly: the shot's keyframes, where its seams are measured.</summary>
    public int[] Keyframes { get; init; } = [];

    /// <summary>For segments: the keyframe before the first frame.</summary>
    public int? StartKeyframe { get; init; }

    /// <summary>For segments: the keyframe after the last frame.</summary>
    public int? EndKeyframe { get; init; }

    /// <summary>Storage folder of the shot, relative to the storage root; frames live in <c>frames/</c> under it.</summary>
    public required string ShotFolder { get; init; }

    /// <summary>
    /// Folders of other takes that reuse this task's frames (relative to the storage root): the worker writes each
    /// frame there too before it reports success, so those takes' segments and assembly find them in their own folder.
    /// </summary>
    public string[] CopyTo { get; init; } = [];

    /// <summary>
    /// The shot's camera plate: a folder of frames (<c>NNNNN.png</c>, relative to the storage root). A keyframe starts
    /// from the plate frame of its index (the last one when the plate is shorter) instead of pure noise.
    /// </summary>
    public string? PlateFolder { get; init; }

    /// <summary>How far keyframes depart from their plate frame: 0 keeps it, 1 ignores it.</summary>
    public double? PlateStrength { get; init; }

    /// <summary>For assembly: the background the shot's sequence is anchored to (a vocabulary phrase); its palette drift is measured.</summary>
    public string? AnchorBackground { get; init; }

    /// <summary>For assembly: the colour the sequence's recurring object is anchored to; the object's colour drift is measured.</summary>
    public string? AnchorColour { get; init; }

    /// <summary>Frames sampled together at most; set (smaller each time) when an earlier attempt ran out of memory.</summary>
    public int? MaxFrameBatch { get; init; }

    /// <summary>
    /// W3C <c>traceparent</c> of the request that submitted the job, if it was traced: the attempt's own trace starts
    /// at the dispatcher and links to it (one trace per attempt, linked to its job).
    /// </summary>
    public string? JobTraceParent { get; init; }

    /// <summary>
    /// W3C <c>traceparent</c> of the attempt's dispatch span: the worker's run of the attempt continues that trace
    /// (the bundle's message, shared by its attempts, is traced on its own).
    /// </summary>
    public string? TraceParent { get; init; }
}

/// <summary>
/// Request from a worker to own the attempts of a bundle before it spends device time on them; answered with
/// <see cref="AttemptClaimsDecided"/>.
/// </summary>
public sealed record ClaimAttempts
{
    /// <summary>The attempts the worker wants to run.</summary>
    public required Guid[] AttemptIds { get; init; }

    /// <summary>The worker's stable id.</summary>
    public required string WorkerId { get; init; }

    /// <summary>The worker's pool.</summary>
    public required string Pool { get; init; }

    /// <summary>The device SKU the attempts will run on (<c>cpu</c>, <c>h100-80g</c>, ...).</summary>
    public required string DeviceSku { get; init; }

    /// <summary>Devices the worker uses for one attempt (cores for <c>cpu</c>).</summary>
    public required int DeviceCount { get; init; }

    /// <summary>Host the worker runs on.</summary>
    public required string Hostname { get; init; }

    /// <summary>The request as one claim per attempt, the unit the coordinator decides.</summary>
    public IEnumerable<ClaimAttempt> Each() => AttemptIds.Select(id => new ClaimAttempt
    {
        AttemptId = id, WorkerId = WorkerId, Pool = Pool, DeviceSku = DeviceSku, DeviceCount = DeviceCount, Hostname = Hostname,
    });
}

/// <summary>One worker's claim of one attempt, as the coordinator decides it.</summary>
public sealed record ClaimAttempt
{
    /// <summary>The attempt the worker wants to run.</summary>
    public required Guid AttemptId { get; init; }

    /// <summary>The worker's stable id.</summary>
    public required string WorkerId { get; init; }

    /// <summary>The worker's pool.</summary>
    public required string Pool { get; init; }

    /// <summary>The device SKU the attempt will run on.</summary>
    public required string DeviceSku { get; init; }

    /// <summary>Devices the worker uses for one attempt.</summary>
    public required int DeviceCount { get; init; }

    /// <summary>Host the worker runs on.</summary>
    public required string Hostname { get; init; }
}

/// <summary>The coordinator's answer to <see cref="ClaimAttempts"/>: the worker owns and must run the granted attempts, and must not run the others.</summary>
public sealed record AttemptClaimsDecided
{
    /// <summary>The attempts now owned by the worker.</summary>
    public required Guid[] Granted { get; init; }

    /// <summary>The attempts refused (duplicate delivery, already claimed, superseded, job paused or over budget).</summary>
    public required AttemptClaimRefused[] Refused { get; init; }
}

/// <summary>A refused claim: the worker must not run the attempt.</summary>
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

/// <summary>
/// Attempts that finished with their outputs in storage, published together: a worker sends what finished while its
/// previous report was on its way, so a busy worker reports many short attempts in one message.
/// </summary>
public sealed record TasksSucceeded
{
    /// <summary>One report per attempt.</summary>
    public required TaskSucceeded[] Reports { get; init; }
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

    /// <summary>Log lines of the attempt not yet sent with a heartbeat.</summary>
    public AttemptLogEntry[] Log { get; init; } = [];
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

    /// <summary>
    /// <c>transient</c> (retried with backoff), <c>out-of-memory</c> (retried with a smaller batch), <c>fatal</c>
    /// (fails the shot at once) or <c>cancelled</c> (the worker stopped it because the coordinator said so).
    /// </summary>
    public required string Classification { get; init; }

    /// <summary>A one-line reason a person can act on.</summary>
    public required string Reason { get; init; }

    /// <summary>Log lines of the attempt not yet sent with a heartbeat (the exception among them).</summary>
    public AttemptLogEntry[] Log { get; init; } = [];
}

/// <summary>One line of an attempt's log, numbered from 1 within the attempt so that a line sent twice is kept once.</summary>
public sealed record AttemptLogEntry
{
    /// <summary>Position in the attempt's log.</summary>
    public required int Seq { get; init; }

    /// <summary>When the worker logged it (the worker's clock).</summary>
    public required DateTime At { get; init; }

    /// <summary><c>info</c>, <c>warning</c> or <c>error</c>.</summary>
    public required string Level { get; init; }

    /// <summary>The line.</summary>
    public required string Message { get; init; }
}

/// <summary>
/// A worker's periodic sign of life, sent as a request to the coordinator: the attempts it holds and how far they
/// are. Each one renews the lease of the attempts it names; the answer says which of them to stop.
/// </summary>
public sealed record WorkerHeartbeat
{
    /// <summary>The worker's stable id.</summary>
    public required string WorkerId { get; init; }

    /// <summary>The worker's pool.</summary>
    public required string Pool { get; init; }

    /// <summary>The device SKU the worker bills.</summary>
    public required string DeviceSku { get; init; }

    /// <summary>Devices one attempt holds.</summary>
    public required int DeviceCount { get; init; }

    /// <summary>Attempts the worker runs at once.</summary>
    public required int Slots { get; init; }

    /// <summary>Host the worker runs on.</summary>
    public required string Hostname { get; init; }

    /// <summary>The attempts the worker is running now.</summary>
    public required HeldAttempt[] Attempts { get; init; }

    /// <summary>The implementation rendering <c>diffusion</c> tasks: <c>native</c> or <c>torch</c> (null from older workers).</summary>
    public string? DiffusionEngine { get; init; }

    /// <summary>The device the worker found: GPU model (with the LibTorch device and precision), or CPU model and cores.</summary>
    public string? DeviceName { get; init; }

    /// <summary>That device's memory in bytes (GPU memory, or the RAM available to the worker); 0 when unknown.</summary>
    public long DeviceMemoryBytes { get; init; }

    /// <summary>The engines the worker runs (<c>procedural</c>, <c>diffusion</c>); empty from an older worker: every engine.</summary>
    public string[] Engines { get; init; } = [];

    /// <summary>Labels the operator gave the worker (site, rack, "spot").</summary>
    public string[] Tags { get; init; } = [];
}

/// <summary>An attempt a worker holds, as of one heartbeat.</summary>
public sealed record HeldAttempt
{
    /// <summary>The attempt (fencing token).</summary>
    public required Guid AttemptId { get; init; }

    /// <summary>Units done (frames × steps).</summary>
    public required int Completed { get; init; }

    /// <summary>Units in all.</summary>
    public required int Total { get; init; }

    /// <summary>Device-seconds spent so far: what the attempt is billed if the worker is lost after this heartbeat.</summary>
    public required double DeviceSeconds { get; init; }

    /// <summary>Log lines since the last acknowledged heartbeat.</summary>
    public AttemptLogEntry[] Log { get; init; } = [];
}

/// <summary>The coordinator's answer to a heartbeat: the log lines are stored; stop the listed attempts.</summary>
public sealed record HeartbeatAcknowledged
{
    /// <summary>Attempts that are no longer the task's current one (lost, cancelled, superseded): stop them between steps.</summary>
    public required StopAttempt[] Stop { get; init; }
}

/// <summary>An attempt the worker must stop, and why.</summary>
public sealed record StopAttempt
{
    /// <summary>The attempt to stop.</summary>
    public required Guid AttemptId { get; init; }

    /// <summary>Why, for the attempt's log.</summary>
    public required string Reason { get; init; }
}
