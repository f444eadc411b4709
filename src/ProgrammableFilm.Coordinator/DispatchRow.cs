using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// A task, its shot and its job's project: what the dispatcher schedules a task by and makes its message from, read
/// by the candidate query in one go so that dispatching is one write.
/// </summary>
public sealed class DispatchRow
{
    public Guid Id { get; init; }

    public required string Project { get; init; }

    /// <summary>How many jobs shared the candidate query's rows (each got its share of them); 0 where not counted.</summary>
    public long RunnableJobs { get; init; }

    public int Lane { get; init; }

    public int Priority { get; init; }

    public DateTime CreatedAt { get; init; }

    public DateTime? ReadyAt { get; init; }

    public DateTime? NotBefore { get; init; }

    public Guid JobId { get; init; }

    public Guid ShotId { get; init; }

    public required string Kind { get; init; }

    public int FirstFrame { get; init; }

    public int LastFrame { get; init; }

    public int? StartKeyframe { get; init; }

    public int? EndKeyframe { get; init; }

    public string? CopyTo { get; init; }

    public int AttemptCount { get; init; }

    public int? MaxFrameBatch { get; init; }

    public long MinMemoryBytes { get; init; }

    public required string Engine { get; init; }

    public required string Prompt { get; init; }

    public int Width { get; init; }

    public int Height { get; init; }

    public int Fps { get; init; }

    public int Interpolate { get; init; }

    public int Steps { get; init; }

    public double Guidance { get; init; }

    public long Seed { get; init; }

    public int FrameCount { get; init; }

    public int KeyframeInterval { get; init; }

    public required string Folder { get; init; }

    public Guid? PlateId { get; init; }

    public double? PlateStrength { get; init; }

    public string? PlateStrengths { get; init; }

    public string? AnchorBackground { get; init; }

    public string? AnchorColour { get; init; }

    public string? TraceParent { get; init; }

    /// <summary>Since when the task could have run: Ready, or the end of its retry backoff if that is later.</summary>
    public DateTime RunnableSince => NotBefore is { } notBefore && notBefore > (ReadyAt ?? CreatedAt) ? notBefore : ReadyAt ?? CreatedAt;

    public static DispatchRow From(RenderTask task, Shot shot, string project) => new()
    {
        Id = task.Id, Project = project, Lane = task.Lane, Priority = task.Priority, CreatedAt = task.CreatedAt, ReadyAt = task.ReadyAt,
        NotBefore = task.NotBefore, JobId = task.JobId, ShotId = task.ShotId, Kind = task.Kind, FirstFrame = task.FirstFrame,
        LastFrame = task.LastFrame, StartKeyframe = task.StartKeyframe, EndKeyframe = task.EndKeyframe, CopyTo = task.CopyTo,
        AttemptCount = task.AttemptCount, MaxFrameBatch = task.MaxFrameBatch, MinMemoryBytes = task.MinMemoryBytes,
        Engine = shot.Engine, Prompt = shot.Prompt, Width = shot.Width, Height = shot.Height, Fps = shot.Fps, Interpolate = shot.Interpolate,
        Steps = shot.Steps, Guidance = shot.Guidance, Seed = shot.Seed, FrameCount = shot.FrameCount, KeyframeInterval = shot.KeyframeInterval,
        Folder = shot.Folder, PlateId = shot.PlateId, PlateStrength = shot.PlateStrength, PlateStrengths = shot.PlateStrengths,
        AnchorBackground = shot.AnchorBackground, AnchorColour = shot.AnchorColour, TraceParent = shot.TraceParent,
    };
}
