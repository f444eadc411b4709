namespace ProgrammableFilm.Data.Entities;

public enum JobState
{
    Queued,
    Running,
    Succeeded,
    Failed,
}

public enum ShotState
{
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// <summary>
/// Blocked (waiting for dependencies) → Ready → Dispatched (attempt queued) → Running (attempt claimed) →
/// Succeeded or Failed. A state changes only out of its expected predecessors.
/// </summary>
public enum RenderTaskState
{
    Blocked,
    Ready,
    Dispatched,
    Running,
    Succeeded,
    Failed,
}

/// <summary>Queued (published, unclaimed) → Claimed → Succeeded, Failed or Lost; Superseded when another attempt replaced it.</summary>
public enum AttemptState
{
    Queued,
    Claimed,
    Succeeded,
    Failed,
    Lost,
    Superseded,
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

    public ShotState State { get; set; }

    /// <summary>Storage folder of the shot, relative to the storage root.</summary>
    public required string Folder { get; set; }

    public string? VideoPath { get; set; }

    public string? ManifestPath { get; set; }

    public double? Flicker { get; set; }

    public string? Error { get; set; }

    public DateTime? FinishedAt { get; set; }
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

    public string? WorkerId { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime? PublishedAt { get; set; }

    public DateTime? ClaimedAt { get; set; }

    /// <summary>When the worker says it finished (its clock).</summary>
    public DateTime? ReportedAt { get; set; }

    /// <summary>When the coordinator applied the outcome.</summary>
    public DateTime? FinishedAt { get; set; }

    public string? Error { get; set; }

    public string? ResultJson { get; set; }
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
}
