using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator.Takes;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Domain.Takes;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Coordinator;

/// <summary>A spec that is valid on its own but not against the farm's state (for example <c>after</c> names an unknown job).</summary>
public sealed class SpecRejectedException(IReadOnlyList<SpecError> errors)
    : Exception(string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")))
{
    public IReadOnlyList<SpecError> Errors { get; } = errors;
}

/// <summary>An iteration: the job's one shot continues an existing shot's lineage, derived from its approved take.</summary>
public sealed record TakeLineage(Guid LineageId, Guid ParentTakeId);

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
    ShotStorage storage,
    Quotes.QuoteBook quotes,
    TaskStatistics statistics,
    CoordinatorOptions options)
{
    /// <summary>Plans and writes the job; throws <see cref="SpecRejectedException"/>, having written nothing, when <c>after</c> names a job that does not exist.</summary>
    /// <param name="lineage">Set for an iteration: the spec's one shot becomes new takes of that shot.</param>
    public Task<Job> SubmitAsync(JobSpec spec, CancellationToken cancellationToken, TakeLineage? lineage = null) =>
        WriteAsync(spec, lineage, rehearsal: false, cancellationToken);

    /// <summary>
    /// Plans and writes the job as <see cref="SubmitAsync"/> does, then rolls it back: nothing of it is ever seen.
    /// <see cref="PlanningWarmUp"/> runs it at the start, so that the first big job is not the one that compiles the path.
    /// </summary>
    public Task RehearseAsync(JobSpec spec, CancellationToken cancellationToken) =>
        WriteAsync(spec, lineage: null, rehearsal: true, cancellationToken);

    private async Task<Job> WriteAsync(JobSpec spec, TakeLineage? lineage, bool rehearsal, CancellationToken cancellationToken)
    {
        if (lineage is not null && spec.Shots.Count != 1)
        {
            throw new ArgumentException("An iteration renders one shot.", nameof(spec));
        }

        var now = time.GetUtcNow().UtcDateTime;
        var taskCount = spec.Shots.Sum(s => s.Takes().Sum(t => ShotPlanner.TaskCount(t.Take)));
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

        // The quote's prices are read before the transaction: a new farm's first read writes the configured prices,
        // which on SQLite would wait for this transaction's lock from another connection until it gave up.
        await quotes.ReadPricesAsync(cancellationToken);
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        foreach (var dependency in spec.After)
        {
            // Locked so that a job it waits for cannot finish between this check and the commit unseen.
            await ShotFinisher.LockJobAsync(db, dependency, cancellationToken);
        }

        // Another project's job is "no such job" here too: a spec must not be a way to probe other projects' ids.
        var dependencies = await db.Jobs.Where(j => spec.After.Contains(j.Id) && j.Project == spec.Project).Select(j => new { j.Id, j.State }).ToListAsync(cancellationToken);
        var unknown = spec.After.Select((id, index) => (id, index)).Where(x => dependencies.All(d => d.Id != x.id)).ToList();
        if (unknown.Count > 0)
        {
            throw new SpecRejectedException([.. unknown.Select(x => new SpecError($"after[{x.index}]", $"there is no job {x.id}"))]);
        }

        await CheckPlatesAsync(db, spec, cancellationToken);

        // Quoted in the submission's transaction, so the quote is the one made from the history and fleet of the
        // moment the job was accepted, and a job never exists without it.
        var (quote, _) = await quotes.QuoteAsync(db, spec, cancellationToken);
        db.Jobs.Add(job);
        if (spec.Budget is { } budget)
        {
            // In the job's transaction: a job never exists, nor is dispatched, without the budget its spec gave it.
            db.JobBudgets.Add(Money.Budgets.JobBudgetRow(job.Id, budget, now));
        }

        foreach (var dependency in spec.After)
        {
            db.JobDependencies.Add(new JobDependency { JobId = job.Id, DependsOnJobId = dependency });
        }

        var firstTake = lineage is null ? 1 : await db.Shots.Where(s => s.LineageId == lineage.LineageId).MaxAsync(s => s.TakeNumber, cancellationToken) + 1;
        var tasks = new List<RenderTask>();
        var edges = new List<TaskDependency>();
        var reuses = new List<TaskReuse>();
        var copies = new List<FrameCopy>();
        var finished = lineage is null || inBackground ? FinishedRenders.None : await FinishedRenders.LoadAsync(db, storage, lineage.LineageId, cancellationToken);
        var takes = new List<List<Shot>>();
        for (var ordinal = 0; ordinal < spec.Shots.Count; ordinal++)
        {
            takes.Add(AddTakes(db, job, spec.Shots[ordinal], ordinal, lineage, firstTake));
            if (!inBackground)
            {
                takes[^1].ForEach(t => t.PlannedAt = now);
            }
        }

        // The job and its takes first: the tasks' rows refer to the takes, and are written as each shot is planned.
        await db.SaveChangesAsync(cancellationToken);
        await using var graph = await TaskGraphWriter.BeginAsync(db, cancellationToken);
        if (!inBackground)
        {
            foreach (var shotTakes in takes)
            {
                var before = tasks.Count;
                PlanTakes(job, shotTakes, now, tasks, edges, reuses, finished, copies);
                graph.Write(tasks.Skip(before));
            }

            job.TaskCount = tasks.Count;
        }

        await graph.EndTasksAsync(cancellationToken);

        // After the job and its takes: the model declares no relationship for EF to order the inserts by. Saves the
        // counts planning changed too (takes that reuse another's work have fewer tasks of their own).
        Quotes.QuoteBook.Record(db, job, [.. takes.SelectMany(t => t)], quote, now);
        await db.SaveChangesAsync(cancellationToken);
        await graph.WriteEdgesAsync(edges, cancellationToken);
        if (reuses.Count > 0)
        {
            db.TaskReuses.AddRange(reuses);
            await db.SaveChangesAsync(cancellationToken);
        }

        if (taskCount > options.StatusRollupAbove)
        {
            await JobReports.RecordPlannedCountsAsync(db, job.Id, tasks, now, cancellationToken);
        }

        if (rehearsal)
        {
            await transaction.RollbackAsync(cancellationToken);
            return job;
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

        // Before the commit, so that a reusing take's first tasks find its frames; a failed submission leaves no folder.
        try
        {
            copies.ForEach(copy => storage.Copy(copy.Source, copy.Target));

            // One transaction: a job is either fully planned or not there at all.
            await transaction.CommitAsync(cancellationToken);
        }
        catch when (copies.Count > 0)
        {
            storage.DeleteFolder(job.Id.ToString("N"));
            throw;
        }

        dispatchSignal.Wake();
        statistics.Written(taskCount);
        return job;
    }

    /// <summary>
    /// The shot's takes as rows: one per variant (or the shot itself), numbered on from <paramref name="firstTake"/>.
    /// A take of a sweep or an iteration is named <c>{shot}#{take}</c> (no shot name can hold '#') and renders into
    /// <c>{job}/{shot}/take-NN/</c>; a shot rendered once keeps its name and folder.
    /// </summary>
    private static List<Shot> AddTakes(FarmDbContext db, Job job, ShotSpec spec, int ordinal, TakeLineage? lineage, int firstTake)
    {
        var swept = spec.Variants.Count > 0 || lineage is not null;
        var rows = new List<Shot>();
        foreach (var (overrides, take) in spec.Takes())
        {
            var number = firstTake + rows.Count;
            var id = Guid.CreateVersion7();
            var shot = new Shot
            {
                Id = id,
                JobId = job.Id,
                Ordinal = ordinal,
                Name = swept ? $"{spec.Name}#{number}" : spec.Name,
                ShotName = spec.Name,
                LineageId = lineage?.LineageId ?? (rows.Count == 0 ? id : rows[0].LineageId),
                TakeNumber = number,
                VariantJson = overrides.IsEmpty() ? null : JsonSerializer.Serialize(overrides, SpecJson.Compact),
                ParentTakeId = lineage?.ParentTakeId,
                Prompt = take.Prompt,
                DurationSeconds = take.DurationSeconds,
                Fps = take.Fps,
                Width = take.Width,
                Height = take.Height,
                Steps = take.Steps,
                Guidance = take.Guidance,
                Seed = take.Seed,
                Engine = take.Engine,
                KeyframeInterval = take.KeyframeInterval,
                FrameCount = take.FrameCount,
                State = ShotState.Queued,
                Folder = swept ? ShotStorage.TakeFolder(job.Id, spec.Name, number) : ShotStorage.ShotFolder(job.Id, spec.Name),
                TraceParent = System.Diagnostics.Activity.Current?.Id,
                Interpolate = take.Interpolate,
                PlateId = take.Plate?.Id,
                PlateStrength = take.Plate?.Strength,
                PlateStrengths = PlateSpec.Format(take.Plate?.Schedule),
                AnchorBackground = take.Anchors?.Background,
                AnchorObject = take.Anchors?.Object,
                AnchorColour = take.Anchors?.Colour,
                TaskCount = ShotPlanner.TaskCount(take),
            };
            db.Shots.Add(shot);
            rows.Add(shot);
        }

        return rows;
    }

    /// <summary>
    /// Checks every shot's plate against the farm: uploaded to this project (another project's plate is "no such
    /// plate", as with <c>after</c>), and of the shot's size (a preview's halved size, for a preview).
    /// </summary>
    private static async Task CheckPlatesAsync(FarmDbContext db, JobSpec spec, CancellationToken cancellationToken)
    {
        var ids = spec.Shots.Select(s => s.Plate?.Id).OfType<Guid>().Distinct().ToList();
        var plates = ids.Count == 0 ? [] : await db.Plates.AsNoTracking().Where(p => ids.Contains(p.Id) && p.Project == spec.Project).ToListAsync(cancellationToken);
        var errors = new List<SpecError>();
        for (var i = 0; i < spec.Shots.Count; i++)
        {
            var shot = spec.Shots[i];
            if (shot.Plate is not { } wanted)
            {
                continue;
            }

            if (wanted.Id is not { } id)
            {
                errors.Add(new SpecError($"shots[{i}].plate.path", "is read by pfilm render only; upload the plate (POST /api/projects/{project}/plates) and name its id"));
            }
            else if (plates.SingleOrDefault(p => p.Id == id) is not { } plate)
            {
                errors.Add(new SpecError($"shots[{i}].plate.id", $"there is no plate {id}"));
            }
            else if (plate.DeletedAt is { } deleted)
            {
                errors.Add(new SpecError($"shots[{i}].plate.id", $"plate {id} was deleted at {deleted:u}; upload the footage again"));
            }
            else if ((spec.Preview ? (PreviewPolicy.Half(plate.Width), PreviewPolicy.Half(plate.Height)) : (plate.Width, plate.Height)) != (shot.Width, shot.Height))
            {
                errors.Add(new SpecError($"shots[{i}].plate.id", $"the plate is {plate.Width}x{plate.Height}; the shot is {shot.Width}x{shot.Height}: a plate must be the shot's size"));
            }
        }

        if (errors.Count > 0)
        {
            throw new SpecRejectedException(errors);
        }
    }

    /// <summary>Each kind's name in <c>tasks.kind</c>, made once rather than per task.</summary>
    private static readonly string[] KindNames = [.. Enum.GetValues<TaskKind>().Select(kind => kind.ToString().ToLowerInvariant())];

    /// <summary>One shot's task graph (a big job's background planning plans each take alone, without reuse).</summary>
    internal static void PlanShot(Job job, Shot shot, DateTime now, List<RenderTask> tasks, List<TaskDependency> edges) =>
        PlanTakes(job, [shot], now, tasks, edges, [], FinishedRenders.None, []);

    /// <summary>
    /// The takes' task graphs: tasks without dependencies start Ready, the rest Blocked with their count. A task
    /// that an earlier take already renders (<see cref="TakePlanner"/>) is not planned again: the take depends on
    /// that task, which copies its frames into the take's folder, and the reuse is recorded for the manifest. A task
    /// an earlier take of the lineage has already rendered (<paramref name="finished"/>, an iteration) is not planned
    /// either: its frames are copied (<paramref name="copies"/>) and the reuse is recorded the same way.
    /// </summary>
    internal static void PlanTakes(Job job, IReadOnlyList<Shot> takes, DateTime now, List<RenderTask> tasks, List<TaskDependency> edges, List<TaskReuse> reuses, FinishedRenders finished, List<FrameCopy> copies)
    {
        var specs = takes.Select(SpecOf).ToList();
        var plans = TakePlanner.Plan(specs);
        var planned = new List<Dictionary<string, RenderTask>>(takes.Count);
        var done = new Dictionary<Guid, FinishedRender>();
        for (var take = 0; take < takes.Count; take++)
        {
            var shot = takes[take];
            var byKey = new Dictionary<string, RenderTask>(StringComparer.Ordinal);
            foreach (var (task, reusedFrom) in plans[take])
            {
                var earlier = reusedFrom is { } owner && done.TryGetValue(planned[owner][task.Key].Id, out var owned) ? owned
                    : reusedFrom is null && task.Kind is TaskKind.Keyframe or TaskKind.Segment && finished.TryFind(RenderKey.Of(specs[take], task), out var found) ? found
                    : null;
                if (earlier is not null)
                {
                    done[earlier.Task.Id] = earlier;
                    copies.AddRange(earlier.Frames.Select(f => new FrameCopy(ShotStorage.FramePath(earlier.Folder, f), ShotStorage.FramePath(shot.Folder, f))));
                    byKey[task.Key] = earlier.Task;
                    reuses.Add(new TaskReuse { ShotId = shot.Id, TaskId = earlier.Task.Id });
                    continue;
                }

                if (reusedFrom is { } sharedFrom)
                {
                    var shared = planned[sharedFrom][task.Key];
                    shared.CopyTo = shared.CopyTo is null ? shot.Folder : $"{shared.CopyTo}\n{shot.Folder}";
                    byKey[task.Key] = shared;
                    reuses.Add(new TaskReuse { ShotId = shot.Id, TaskId = shared.Id });
                    continue;
                }

                byKey[task.Key] = new RenderTask
                {
                    Id = Guid.CreateVersion7(),
                    ShotId = shot.Id,
                    JobId = job.Id,
                    Key = task.Key,
                    Kind = KindNames[(int)task.Kind],
                    FirstFrame = task.Frames[0],
                    LastFrame = task.Frames[^1],
                    StartKeyframe = task.StartKeyframe,
                    EndKeyframe = task.EndKeyframe,
                    CreatedAt = now,
                    UpdatedAt = now,
                    Lane = job.Lane == "preview" ? 0 : 1,
                    Priority = job.Priority,
                };
                tasks.Add(byKey[task.Key]);
            }

            var own = 0;
            foreach (var (task, reusedFrom) in plans[take])
            {
                var row = byKey[task.Key];
                if (reusedFrom is not null || done.ContainsKey(row.Id))
                {
                    continue;
                }

                // Work already rendered by an earlier take is no dependency: it is done, and its frames are copied.
                own++;
                var pending = 0;
                foreach (var key in task.DependsOn)
                {
                    var dependency = byKey[key];
                    if (!done.ContainsKey(dependency.Id))
                    {
                        edges.Add(new TaskDependency { TaskId = row.Id, DependsOnTaskId = dependency.Id });
                        pending++;
                    }
                }

                row.PendingDependencies = pending;
                row.State = pending == 0 ? RenderTaskState.Ready : RenderTaskState.Blocked;
                row.ReadyAt = pending == 0 ? now : null;
            }

            shot.TaskCount = own;
            planned.Add(byKey);
        }
    }

    /// <summary>A take's row as the spec the planner reads.</summary>
    public static ShotSpec SpecOf(Shot shot) => new()
    {
        Name = shot.ShotName,
        Prompt = shot.Prompt,
        DurationSeconds = shot.DurationSeconds,
        Fps = shot.Fps,
        Width = shot.Width,
        Height = shot.Height,
        Steps = shot.Steps,
        Guidance = shot.Guidance,
        Seed = shot.Seed,
        Engine = shot.Engine,
        KeyframeInterval = shot.KeyframeInterval,
        Interpolate = shot.Interpolate,
        Plate = shot.PlateId is { } plate ? new PlateSpec(plate, null, shot.PlateStrength ?? 1, PlateSpec.Parse(shot.PlateStrengths)) : null,
        Anchors = shot.AnchorBackground is null && shot.AnchorObject is null && shot.AnchorColour is null
            ? null
            : new AnchorSpec(shot.AnchorBackground, shot.AnchorObject, shot.AnchorColour, null),
    };
}

/// <summary>JSON settings for specs and manifests: camelCase, like the spec files.</summary>
public static class SpecJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    /// <summary>One line, nulls left out: a take's overrides as stored and shown.</summary>
    public static JsonSerializerOptions Compact { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };
}
