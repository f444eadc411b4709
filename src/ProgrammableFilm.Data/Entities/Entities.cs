namespace ProgrammableFilm.Data.Entities;

/// <summary>
/// Planning (a big job, planned in the background) → Waiting (for the jobs named in its spec's <c>after</c>) → Queued
/// → Running → Succeeded, Failed or Cancelled. A failed or cancelled job can be retried (back to Queued or Waiting).
/// Pausing is a flag, not a state: a paused job keeps its state and gets no new dispatch.
/// </summary>
public enum JobState
{
    Queued,
    Running,
    Succeeded,
    Failed,
    Waiting,
    Cancelled,
    Planning,
}

public enum ShotState
{
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// <summary>
/// Blocked (waiting for dependencies) → Ready → Dispatched (attempt queued) → Running (attempt claimed) →
/// Succeeded, Failed or Cancelled. Dispatched or Running go back to Ready when the attempt is lost, refused or fails
/// with a retryable class; Failed and Cancelled go back to Blocked or Ready when the job is retried. A state changes
/// only out of its expected predecessors (see docs/architecture.md for the diagram).
/// </summary>
public enum RenderTaskState
{
    Blocked,
    Ready,
    Dispatched,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// <summary>
/// Queued (published, unclaimed) → Claimed → Succeeded, Failed, Lost (lease expired) or Cancelled (stopped on
/// request); Queued → Superseded (refused at claim time) or Cancelled. Every end state is final.
/// </summary>
public enum AttemptState
{
    Queued,
    Claimed,
    Succeeded,
    Failed,
    Lost,
    Superseded,
    Cancelled,
}

public sealed class Job
{
    public Guid Id { get; set; }

    public required string Project { get; set; }

    public string? Name { get; set; }

    public required string Lane { get; set; }

    public int Priority { get; set; }

    public JobState State { get; set; }

    public required string SpecJson { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime? FinishedAt { get; set; }

    public string? Error { get; set; }

    /// <summary>No new attempts are dispatched while set; running attempts finish.</summary>
    public bool Paused { get; set; }

    /// <summary>Retries allowed per task for transient and out-of-memory failures.</summary>
    public int Retries { get; set; }

    /// <summary>Tasks planned for the job, written with them: status and limits need no count of the plan.</summary>
    public int TaskCount { get; set; }

    public List<Shot> Shots { get; set; } = [];
}

public sealed class Shot
{
    public Guid Id { get; set; }

    public Guid JobId { get; set; }

    public int Ordinal { get; set; }

    public required string Name { get; set; }

    public required string Prompt { get; set; }

    public double DurationSeconds { get; set; }

    public int Fps { get; set; }

    public int Width { get; set; }

    public int Height { get; set; }

    public int Steps { get; set; }

    public double Guidance { get; set; }

    public long Seed { get; set; }

    public required string Engine { get; set; }

    public int KeyframeInterval { get; set; }

    public int FrameCount { get; set; }

    /// <summary>The frame-rate multiplier of the interpolate task after assembly; 1 when the shot has none.</summary>
    public int Interpolate { get; set; } = 1;

    /// <summary>The camera plate the shot's keyframes start from; null for a shot generated from the prompt alone.</summary>
    public Guid? PlateId { get; set; }

    /// <summary>How far each keyframe departs from its plate frame: 0 keeps it, 1 ignores it.</summary>
    public double? PlateStrength { get; set; }

    /// <summary>A strength per keyframe (<see cref="Domain.Specs.PlateSpec.Format"/>); null when <see cref="PlateStrength"/> holds for all.</summary>
    public string? PlateStrengths { get; set; }

    /// <summary>The job's anchors the shot inherited (null when it has none or opted out); its prompt and seed include them.</summary>
    public string? AnchorBackground { get; set; }

    public string? AnchorObject { get; set; }

    public string? AnchorColour { get; set; }

    public ShotState State { get; set; }

    /// <summary>Storage folder of the shot, relative to the storage root.</summary>
    public required string Folder { get; set; }

    public string? VideoPath { get; set; }

    public string? ManifestPath { get; set; }

    public double? Flicker { get; set; }

    public string? Error { get; set; }

    public DateTime? FinishedAt { get; set; }

    /// <summary>When the retention sweep deleted the intermediate frames (the MP4 and manifest are kept).</summary>
    public DateTime? FramesDeletedAt { get; set; }

    /// <summary>W3C <c>traceparent</c> of the request that submitted the shot: every attempt's trace links to it.</summary>
    public string? TraceParent { get; set; }

    /// <summary>Tasks planned for the shot.</summary>
    public int TaskCount { get; set; }

    /// <summary>When the shot's tasks were written; null while a big job's background planning has not reached it.</summary>
    public DateTime? PlannedAt { get; set; }

    /// <summary>
    /// The shot as the spec names it. A row is one take of it: <see cref="Name"/> is the same for a shot rendered once,
    /// and <c>{shot}#{take}</c> for a take of a sweep or an iteration (unique in the job).
    /// </summary>
    public required string ShotName { get; set; }

    /// <summary>The shot across jobs: the id of its first take. Every take of one shot, iterations included, shares it.</summary>
    public Guid LineageId { get; set; }

    /// <summary>The take's number within its lineage, from 1, never reused.</summary>
    public int TakeNumber { get; set; } = 1;

    /// <summary>The overrides this take applied to the shot spec (JSON), null for a shot rendered once.</summary>
    public string? VariantJson { get; set; }

    /// <summary>The approved take an iteration derived this take from.</summary>
    public Guid? ParentTakeId { get; set; }

    public TakeReview Review { get; set; }

    public string? ReviewNote { get; set; }

    /// <summary>Who reviewed it: an API key's name and prefix, or the local user in embedded mode.</summary>
    public string? ReviewedBy { get; set; }

    public DateTime? ReviewedAt { get; set; }

    /// <summary>Second temporal difference at the frames where keyframes meet segments (0..255; compare with <see cref="Flicker"/>).</summary>
    public double? SeamError { get; set; }

    /// <summary>Share of the scene parser's checks (object where planned, its colour, the background) the frames pass, 0..1.</summary>
    public double? PromptAdherence { get; set; }

    /// <summary>RMS distance (0..255) of the frames' sky and ground colours from the anchored background's; null without that anchor.</summary>
    public double? AnchorPaletteDrift { get; set; }

    /// <summary>RMS distance (0..255) of the object's mean colour from the anchored colour; null without that anchor.</summary>
    public double? AnchorColourDrift { get; set; }
}

/// <summary>
/// Real footage uploaded to start shots from: its frames, decoded to PNG in <see cref="Folder"/>, and where it came
/// from (the uploaded bytes' SHA-256, who uploaded it, when, the file names), for the manifest of every take using it.
/// </summary>
public sealed class Plate
{
    public Guid Id { get; set; }

    public required string Project { get; set; }

    public required string Sha256 { get; set; }

    /// <summary><c>video/mp4</c>, or <c>image/png</c> / <c>image/jpeg</c> for an image sequence.</summary>
    public required string MediaType { get; set; }

    /// <summary>The uploaded file names, in order, separated by newlines.</summary>
    public required string FileNames { get; set; }

    public long Bytes { get; set; }

    public int FrameCount { get; set; }

    public int Width { get; set; }

    public int Height { get; set; }

    /// <summary>An API key's name and prefix, or <c>local:USER</c> for <c>pfilm render</c>.</summary>
    public required string UploadedBy { get; set; }

    public Guid? UploadedByKeyId { get; set; }

    public DateTime UploadedAt { get; set; }

    /// <summary>Storage folder of the decoded frames (<c>NNNNN.png</c>), relative to the storage root.</summary>
    public required string Folder { get; set; }

    /// <summary>When its frames were deleted; the row stays, for the manifests that record the plate.</summary>
    public DateTime? DeletedAt { get; set; }
}

/// <summary>A take's review: every take starts Pending; approving one makes it the shot's current version.</summary>
public enum TakeReview
{
    Pending,
    Approved,
    Rejected,
}

/// <summary>
/// One approval of a take: the shot's versions, numbered from 1 and kept; the highest is the shot's current version.
/// Approving an older take again (a rollback) adds a version.
/// </summary>
public sealed class ShotVersion
{
    public Guid LineageId { get; set; }

    public int Version { get; set; }

    public Guid TakeId { get; set; }

    public DateTime ApprovedAt { get; set; }

    public Guid? ApprovedByKeyId { get; set; }

    public required string ApprovedBy { get; set; }

    public string? Note { get; set; }
}

/// <summary>A take that uses another take's task instead of rendering the same frames again (its frames are copied in).</summary>
public sealed class TaskReuse
{
    public Guid ShotId { get; set; }

    public Guid TaskId { get; set; }
}

public sealed class RenderTask
{
    public Guid Id { get; set; }

    public Guid ShotId { get; set; }

    public Guid JobId { get; set; }

    public required string Key { get; set; }

    public required string Kind { get; set; }

    public int FirstFrame { get; set; }

    public int LastFrame { get; set; }

    public int? StartKeyframe { get; set; }

    public int? EndKeyframe { get; set; }

    public RenderTaskState State { get; set; }

    /// <summary>Dependencies not yet succeeded; the task becomes Ready when this reaches 0.</summary>
    public int PendingDependencies { get; set; }

    /// <summary>The fencing token: only events of this attempt change the task.</summary>
    public Guid? CurrentAttemptId { get; set; }

    public int AttemptCount { get; set; }

    public int Lane { get; set; }

    public int Priority { get; set; }

    public double Progress { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime UpdatedAt { get; set; }

    /// <summary>When the task last became Ready; the dispatcher measures its latency from here.</summary>
    public DateTime? ReadyAt { get; set; }

    public string? Error { get; set; }

    /// <summary>A retry waits until then (backoff); null dispatches as soon as the task is Ready.</summary>
    public DateTime? NotBefore { get; set; }

    /// <summary>Transient and out-of-memory failures since the job was submitted or last retried.</summary>
    public int Failures { get; set; }

    /// <summary>Frames sampled together; halved by each out-of-memory retry; null leaves it to the worker.</summary>
    public int? MaxFrameBatch { get; set; }

    /// <summary>Device memory the task needs beyond its estimate: raised when it ran out of memory, so it moves to a bigger pool.</summary>
    public long MinMemoryBytes { get; set; }

    /// <summary>Folders of other takes that reuse this task: its frames are written to each too (one per line).</summary>
    public string? CopyTo { get; set; }
}

public sealed class TaskDependency
{
    public Guid TaskId { get; set; }

    public Guid DependsOnTaskId { get; set; }
}

public sealed class Attempt
{
    public Guid Id { get; set; }

    public Guid TaskId { get; set; }

    public int Number { get; set; }

    public AttemptState State { get; set; }

    public required string Pool { get; set; }

    /// <summary>The task's job's project, set at dispatch: what the fair share counts a live attempt against (null on attempts finished before it was kept).</summary>
    public string? Project { get; set; }

    /// <summary>The task's lane, set at dispatch: a pool's queued messages are counted per lane (null as <see cref="Project"/>).</summary>
    public int? Lane { get; set; }

    public string? WorkerId { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime? PublishedAt { get; set; }

    /// <summary>Attempts in the message that carried this one (see <c>RenderBundle</c>): how the dispatcher counts its pool's queued messages.</summary>
    public int BundleSize { get; set; } = 1;

    public DateTime? ClaimedAt { get; set; }

    /// <summary>When the worker says it finished (its clock).</summary>
    public DateTime? ReportedAt { get; set; }

    /// <summary>When the coordinator applied the outcome.</summary>
    public DateTime? FinishedAt { get; set; }

    public string? Error { get; set; }

    public string? ResultJson { get; set; }

    /// <summary>A Claimed attempt not heard from by then is declared Lost; each heartbeat moves it forward.</summary>
    public DateTime? LeaseExpiresAt { get; set; }

    public DateTime? LastHeartbeatAt { get; set; }

    /// <summary>Device-seconds as of the last heartbeat: what a lost attempt is billed.</summary>
    public double DeviceSeconds { get; set; }

    /// <summary><c>transient</c>, <c>out-of-memory</c>, <c>fatal</c>, <c>cancelled</c> or <c>lost</c> for an attempt that did not succeed.</summary>
    public string? FailureClass { get; set; }
}

public sealed class Worker
{
    public required string Id { get; set; }

    public required string Pool { get; set; }

    public required string DeviceSku { get; set; }

    public int DeviceCount { get; set; }

    public required string Hostname { get; set; }

    public DateTime FirstSeenAt { get; set; }

    public DateTime LastSeenAt { get; set; }

    /// <summary>Attempts the worker runs at once.</summary>
    public int Slots { get; set; } = 1;

    /// <summary>How the worker evaluates the diffusion model (<c>native</c> or <c>torch</c>), as its heartbeat says.</summary>
    public string? DiffusionEngine { get; set; }

    /// <summary>The device the worker found (GPU or CPU model), for the fleet view and placement.</summary>
    public string? DeviceName { get; set; }

    public long DeviceMemoryBytes { get; set; }

    /// <summary>The engines the worker runs, comma-separated; null: every engine.</summary>
    public string? Engines { get; set; }

    /// <summary>Free-form labels the operator gave the worker (site, rack, "spot"), comma-separated.</summary>
    public string? Tags { get; set; }
}

/// <summary>A job that waits for another job to succeed (spec field <c>after</c>).</summary>
public sealed class JobDependency
{
    public Guid JobId { get; set; }

    public Guid DependsOnJobId { get; set; }
}

/// <summary>Failures of one worker on one job's tasks; past the threshold the worker is blocked for that job.</summary>
public sealed class JobWorkerFailures
{
    public Guid JobId { get; set; }

    public required string WorkerId { get; set; }

    public int Failures { get; set; }

    public DateTime? BlockedAt { get; set; }
}

/// <summary>One line of an attempt's log, numbered by the worker so that a line sent twice is stored once.</summary>
public sealed class AttemptLogLine
{
    public Guid AttemptId { get; set; }

    public int Seq { get; set; }

    public DateTime LoggedAt { get; set; }

    public required string Level { get; set; }

    public required string Message { get; set; }
}

/// <summary>A project's weight in the fair share of the fleet (1 when it has no row).</summary>
public sealed class ProjectShare
{
    public required string Project { get; set; }

    public double Weight { get; set; }

    public DateTime UpdatedAt { get; set; }
}

/// <summary>When a maintenance sweep last ran; a long gap means the coordinator could not hear its workers.</summary>
public sealed class MaintenanceRun
{
    public required string Name { get; set; }

    public DateTime LastRunAt { get; set; }
}

/// <summary>Append-only: one row per attempt that ran, unique on the attempt id so that nothing is billed twice.</summary>
public sealed class UsageRecord
{
    public long Id { get; set; }

    public Guid AttemptId { get; set; }

    public Guid TaskId { get; set; }

    public Guid ShotId { get; set; }

    public Guid JobId { get; set; }

    public required string Project { get; set; }

    public required string WorkerId { get; set; }

    public required string DeviceSku { get; set; }

    public int DeviceCount { get; set; }

    public double DeviceSeconds { get; set; }

    public double EnergyJoules { get; set; }

    public bool EnergyEstimated { get; set; }

    public decimal DollarsPerHour { get; set; }

    public decimal Cost { get; set; }

    public required string Outcome { get; set; }

    public DateTime RecordedAt { get; set; }

    /// <summary>The pool the attempt ran in; null on rows billed before the price book.</summary>
    public string? Pool { get; set; }

    /// <summary>The grid's carbon intensity the row was billed at (gCO2e/kWh); null on rows billed before the price book.</summary>
    public double? GramsCo2ePerKwh { get; set; }

    public double? Co2eGrams { get; set; }
}

/// <summary>
/// The usage ledger summed per job, shot and price; a database trigger adds each ledger row in the row's own
/// transaction, so it is exact. Cost in micro-dollars (the ledger keeps six decimals).
/// </summary>
public sealed class UsageRollup
{
    public Guid JobId { get; set; }

    public Guid ShotId { get; set; }

    public required string DeviceSku { get; set; }

    public decimal DollarsPerHour { get; set; }

    public bool EnergyEstimated { get; set; }

    public int Attempts { get; set; }

    public long CostMicros { get; set; }

    public double DeviceSeconds { get; set; }

    public double EnergyJoules { get; set; }

    public double Co2eGrams { get; set; }
}

/// <summary>One entry of the price book: a device SKU's price from <see cref="EffectiveFrom"/> on, farm-wide (<see cref="Project"/> empty) or for one project.</summary>
public sealed class DevicePriceRow
{
    public long Id { get; set; }

    public required string Sku { get; set; }

    public string Project { get; set; } = "";

    public DateTime EffectiveFrom { get; set; }

    public decimal DollarsPerHour { get; set; }

    public double RatedWatts { get; set; }

    public DateTime CreatedAt { get; set; }
}

/// <summary>One entry of the price book: a pool's grid carbon intensity (pool <c>*</c>: every pool without its own).</summary>
public sealed class CarbonIntensityRow
{
    public long Id { get; set; }

    public required string Pool { get; set; }

    public string Project { get; set; } = "";

    public DateTime EffectiveFrom { get; set; }

    public double GramsPerKwh { get; set; }

    public DateTime CreatedAt { get; set; }
}

/// <summary>What a project has spent: kept by a trigger on the ledger in the row's own transaction (never written by EF).</summary>
public sealed class ProjectSpend
{
    public required string Project { get; set; }

    public long Attempts { get; set; }

    public long CostMicros { get; set; }

    public double DeviceSeconds { get; set; }

    public double EnergyJoules { get; set; }

    public double Co2eGrams { get; set; }
}

/// <summary>A project's budget in micro-dollars, with its soft threshold in the same unit.</summary>
public sealed class ProjectBudget
{
    public required string Project { get; set; }

    public long LimitMicros { get; set; }

    public double SoftFraction { get; set; }

    public long SoftMicros { get; set; }

    public DateTime UpdatedAt { get; set; }
}

/// <summary>What a job has spent: kept by a trigger on the ledger in the row's own transaction (never written by EF).</summary>
public sealed class JobSpend
{
    public Guid JobId { get; set; }

    public long CostMicros { get; set; }
}

/// <summary>A job's own budget in micro-dollars, with its soft threshold in the same unit.</summary>
public sealed class JobBudget
{
    public Guid JobId { get; set; }

    public long LimitMicros { get; set; }

    public double SoftFraction { get; set; }

    public long SoftMicros { get; set; }

    public DateTime UpdatedAt { get; set; }
}

/// <summary>
/// A row of the <c>budget_stops</c> view: the job gets no new attempts because a hard limit is reached,
/// <see cref="Budget"/> says whose (<c>project</c> or <c>job</c>; a job stopped by both has two rows).
/// </summary>
public sealed class BudgetStop
{
    public Guid JobId { get; set; }

    public required string Budget { get; set; }
}

/// <summary>
/// One crossing of a budget threshold: the project's own budget, or with <see cref="JobId"/> that job's. <see cref="RelayedAt"/>
/// is set once the alert sinks were told.
/// </summary>
public sealed class BudgetAlertRow
{
    public long Id { get; set; }

    public required string Project { get; set; }

    public Guid? JobId { get; set; }

    public required string Level { get; set; }

    public DateTime CrossedAt { get; set; }

    public long SpentMicros { get; set; }

    public long LimitMicros { get; set; }

    public DateTime? RelayedAt { get; set; }
}

/// <summary>A big job's tasks of one shot in one state, as counted at <see cref="TaskCountRollup.CountedAt"/>.</summary>
public sealed class ShotTaskCount
{
    public Guid JobId { get; set; }

    public Guid ShotId { get; set; }

    public RenderTaskState State { get; set; }

    public int Tasks { get; set; }

    /// <summary>Frames the tasks render (an assembly counts one).</summary>
    public long Weight { get; set; }

    public double WeightedProgress { get; set; }
}

/// <summary>When a big job's <see cref="ShotTaskCount"/> rows were last counted.</summary>
public sealed class TaskCountRollup
{
    public Guid JobId { get; set; }

    public DateTime CountedAt { get; set; }
}

/// <summary>An API key: only its SHA-256 hash is stored; <see cref="Prefix"/> names it in lists.</summary>
public sealed class ApiKey
{
    public Guid Id { get; set; }

    public required string Name { get; set; }

    public required string Prefix { get; set; }

    public required string Hash { get; set; }

    /// <summary>Null for a farm-wide admin key.</summary>
    public string? Project { get; set; }

    public Domain.Access.ApiKeyRole Role { get; set; }

    public DateTime CreatedAt { get; set; }

    /// <summary>The key that created this one; null for a key made by the <c>create-key</c> verb.</summary>
    public Guid? CreatedBy { get; set; }

    public DateTime? ExpiresAt { get; set; }

    public DateTime? RevokedAt { get; set; }
}

/// <summary>One line of the append-only audit log: who (key), where (project), what (action, target), how it ended.</summary>
public sealed class AuditEntry
{
    public long Id { get; set; }

    public DateTime At { get; set; }

    public Guid? KeyId { get; set; }

    public string? KeyPrefix { get; set; }

    public string? Project { get; set; }

    public required string Action { get; set; }

    public required string Target { get; set; }

    public required string Outcome { get; set; }
}
