using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Coordinator;

/// <summary>A spec that is valid on its own but not against the farm's state (for example <c>after</c> names an unknown job).</summary>
public sealed class SpecRejectedException(IReadOnlyList<SpecError> errors)
    : Exception(string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")))
{
    public IReadOnlyList<SpecError> Errors { get; } = errors;
}

/// <summary>
/// Writes a validated job, its shots and every shot's task graph in one transaction; a job of more than
/// <see cref="CoordinatorOptions.PlanInBackgroundAbove"/> tasks is written as <see cref="JobState.Planning"/> with its
/// shots only, and <see cref="BackgroundPlanner"/> writes the task graphs.
/// </summary>
public sealed class JobSubmission(
    IDbContextFactory<FarmDbContext> contextFactory,
    ShotFinisher finisher,
    TimeProvider time,
    DispatchSignal dispatchSignal,
    BackgroundPlanner planner,
    CoordinatorOptions options)
{
    /// <summary>Plans and writes the job; throws <see cref="SpecRejectedException"/>, having written nothing, when <c>after</c> names a job that does not exist.</summary>
    public async Task<Job> SubmitAsync(JobSpec spec, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var taskCount = spec.Shots.Sum(s => ShotPlanner.TaskCount(s.FrameCount, s.KeyframeInterval));
        var inBackground = taskCount > options.PlanInBackgroundAbove;
        var job = new Job
        {
            Id = Guid.CreateVersion7(),
            Project = spec.Project,
            Name = spec.Name,
            Lane = spec.Lane.ToString().ToLowerInvariant(),
            Priority = spec.Priority,
            State = inBackground ? JobState.Planning : spec.After.Count == 0 ? JobState.Queued : JobState.Waiting,
            Retries = spec.Retries,
            SpecJson = JsonSerializer.Serialize(spec, SpecJson.Options),
            CreatedAt = now,
            TaskCount = taskCount,
        };

        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        foreach (var dependency in spec.After)
        {
            // Locked so that a job it waits for cannot finish between this check and the commit unseen.
            await ShotFinisher.LockJobAsync(db, dependency, cancellationToken);
        }

        var dependencies = await db.Jobs.Where(j => spec.After.Contains(j.Id)).Select(j => new { j.Id, j.State }).ToListAsync(cancellationToken);
        var unknown = spec.After.Select((id, index) => (id, index)).Where(x => dependencies.All(d => d.Id != x.id)).ToList();
        if (unknown.Count > 0)
        {
            throw new SpecRejectedException([.. unknown.Select(x => new SpecError($"after[{x.index}]", $"there is no job {x.id}"))]);
        }

        db.Jobs.Add(job);
        foreach (var dependency in spec.After)
        {
            db.JobDependencies.Add(new JobDependency { JobId = job.Id, DependsOnJobId = dependency });
        }

        var tasks = new List<RenderTask>();
        var edges = new List<TaskDependency>();
        for (var ordinal = 0; ordinal < spec.Shots.Count; ordinal++)
        {
            var shot = AddShot(db, job, spec.Shots[ordinal], ordinal);
            if (!inBackground)
            {
                shot.PlannedAt = now;
                PlanShot(job, shot, now, tasks, edges);
            }
        }

        await db.SaveChangesAsync(cancellationToken);
        await TaskGraphWriter.WriteAsync(db, tasks, edges, cancellationToken);
        if (taskCount > options.StatusRollupAbove)
        {
            await JobReports.RecordPlannedCountsAsync(db, job.Id, tasks, now, cancellationToken);
        }

        if (inBackground)
        {
            await transaction.CommitAsync(cancellationToken);
            planner.Wake();
            return job;
        }

        if (job.State == JobState.Waiting && !await ShotFinisher.ReleaseIfReadyAsync(db, job.Id, cancellationToken)
            && dependencies.FirstOrDefault(d => d.State is JobState.Failed or JobState.Cancelled) is { } failed)
        {
            await finisher.FailWaitingJobAsync(db, job.Id, $"job {failed.Id}, which it waits for, is {failed.State}", now, cancellationToken);
        }

        // One transaction: a job is either fully planned or not there at all.
        await transaction.CommitAsync(cancellationToken);
        dispatchSignal.Wake();
        return job;
    }

    private static Shot AddShot(FarmDbContext db, Job job, ShotSpec spec, int ordinal)
    {
        var shot = new Shot
        {
            Id = Guid.CreateVersion7(),
            JobId = job.Id,
            Ordinal = ordinal,
            Name = spec.Name,
            Prompt = spec.Prompt,
            DurationSeconds = spec.DurationSeconds,
            Fps = spec.Fps,
            Width = spec.Width,
            Height = spec.Height,
            Steps = spec.Steps,
            Guidance = spec.Guidance,
            Seed = spec.Seed,
            Engine = spec.Engine,
            KeyframeInterval = spec.KeyframeInterval,
            FrameCount = spec.FrameCount,
            State = ShotState.Queued,
            Folder = ShotStorage.ShotFolder(job.Id, spec.Name),
            TraceParent = System.Diagnostics.Activity.Current?.Id,
            TaskCount = ShotPlanner.TaskCount(spec.FrameCount, spec.KeyframeInterval),
        };
        db.Shots.Add(shot);
        return shot;
    }

    /// <summary>The shot's task graph: tasks without dependencies start Ready, the rest Blocked with their count.</summary>
    internal static void PlanShot(Job job, Shot shot, DateTime now, List<RenderTask> tasks, List<TaskDependency> edges)
    {
        var plan = ShotPlanner.Plan(shot.FrameCount, shot.KeyframeInterval);
        var ids = plan.ToDictionary(t => t.Key, _ => Guid.CreateVersion7(), StringComparer.Ordinal);
        foreach (var planned in plan)
        {
            tasks.Add(new RenderTask
            {
                Id = ids[planned.Key],
                ShotId = shot.Id,
                JobId = job.Id,
                Key = planned.Key,
                Kind = planned.Kind.ToString().ToLowerInvariant(),
                FirstFrame = planned.Frames[0],
                LastFrame = planned.Frames[^1],
                StartKeyframe = planned.StartKeyframe,
                EndKeyframe = planned.EndKeyframe,
                State = planned.DependsOn.Count == 0 ? RenderTaskState.Ready : RenderTaskState.Blocked,
                PendingDependencies = planned.DependsOn.Count,
                Lane = job.Lane == "preview" ? 0 : 1,
                Priority = job.Priority,
                CreatedAt = now,
                UpdatedAt = now,
                ReadyAt = planned.DependsOn.Count == 0 ? now : null,
            });
            foreach (var dependency in planned.DependsOn)
            {
                edges.Add(new TaskDependency { TaskId = ids[planned.Key], DependsOnTaskId = ids[dependency] });
            }
        }
    }
}

/// <summary>JSON settings for specs and manifests: camelCase, like the spec files.</summary>
public static class SpecJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };
}
