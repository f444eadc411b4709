using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Npgsql;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Coordinator;

/// <summary>A job's state and progress as the API, the CLI and the dashboard show it.</summary>
public sealed record JobStatus(
    Guid Id,
    string Project,
    string? Name,
    string Lane,
    int Priority,
    string State,
    string? Error,
    DateTime CreatedAt,
    DateTime? FinishedAt,
    int TasksTotal,
    int TasksSucceeded,
    double Progress,
    decimal Cost,
    IReadOnlyList<ShotStatus> Shots,
    bool Paused = false,
    int Retries = 0,
    IReadOnlyList<Guid>? After = null,
    IReadOnlyList<string>? BlockedWorkers = null,
    DateTime? CountedAt = null,
    int TasksPlanned = 0,
    string? WaitingFor = null);

/// <summary>
/// One shot's state and outputs (paths relative to the storage root); in a sequence with anchors, also the consistency
/// check: its palette and object-colour drift from them (0..255, null without that anchor or before assembly).
/// </summary>
public sealed record ShotStatus(
    Guid Id,
    string Name,
    string Engine,
    string State,
    string? Error,
    int FrameCount,
    int TasksTotal,
    int TasksSucceeded,
    double Progress,
    string? Video,
    string? Manifest,
    double? Flicker,
    decimal Cost,
    double? AnchorPaletteDrift,
    double? AnchorColourDrift);

/// <summary>A shot's storage locations (relative to the storage root).</summary>
public sealed record ShotFiles(Guid Id, string Name, string State, string Folder, int FrameCount, string? Video, string? Manifest);

/// <summary>What a job cost, per shot and per device SKU.</summary>
public sealed record JobCost(
    Guid JobId,
    string Project,
    string Currency,
    decimal Cost,
    double DeviceSeconds,
    double EnergyKilowattHours,
    bool EnergyEstimated,
    int Attempts,
    IReadOnlyList<ShotCost> Shots,
    IReadOnlyList<SkuCost> Devices,
    double Co2eGrams = 0);

public sealed record ShotCost(Guid ShotId, string Name, decimal Cost, double DeviceSeconds, double EnergyKilowattHours, int Attempts, double Co2eGrams = 0);

public sealed record SkuCost(string DeviceSku, decimal DollarsPerHour, decimal Cost, double DeviceSeconds);

/// <summary>
/// A page of a job's attempt logs in task order; <see cref="Next"/> is the <c>after</c> cursor of the next page, if
/// any.
/// </summary>
public sealed record LogPage(IReadOnlyList<AttemptLog> Attempts, string? Next);

/// <summary>One attempt's log.</summary>
public sealed record AttemptLog(string Task, int Attempt, Guid AttemptId, string State, string? Worker, string? FailureClass, string? Error, IReadOnlyList<LogLine> Lines);

public sealed record LogLine(DateTime At, string Level, string Message);

/// <summary>A worker as the fleet view shows it: <c>idle</c>, <c>busy</c> or <c>lost</c> (silent for longer than a lease).</summary>
public sealed record WorkerStatus(string Id, string Pool, string DeviceSku, int DeviceCount, int Slots, string Hostname, string State, DateTime LastSeenAt, int RunningAttempts, string? DiffusionEngine, string? DeviceName, long DeviceMemoryBytes, string? Engines, string? Tags);

/// <summary>One line of a project's job list.</summary>
public sealed record JobSummary(Guid Id, string? Name, string Lane, int Priority, string State, bool Paused, DateTime CreatedAt, DateTime? FinishedAt, string? Error);

/// <summary>A page of a project's jobs, newest first; <see cref="Next"/> is the offset of the next page, if any.</summary>
public sealed record JobPage(IReadOnlyList<JobSummary> Jobs, int Total, int? Next);

/// <summary>Read-side queries over the farm database.</summary>
public sealed class JobReports(IDbContextFactory<FarmDbContext> contextFactory, CoordinatorOptions options, TimeProvider time, ILogger<JobReports> logger) : IDisposable
{
    /// <summary>The big jobs this process is recounting now, so that a burst of reads starts one recount, not one each.</summary>
    private readonly ConcurrentDictionary<Guid, byte> _recounting = new();

    private readonly CancellationTokenSource _stopping = new();

    /// <summary>The fleet as pipelines poll it: fresh for every caller, read once for all who ask at the same time.</summary>
    private readonly CoalescedRead<IReadOnlyList<WorkerStatus>> _workers = new(cancellationToken => ReadWorkersAsync(contextFactory, options, time, cancellationToken));

    /// <summary>
    /// A job's status rows as its watchers poll them (a dashboard, a CI pipeline, a producer's page on one big job): read
    /// once for everyone who asks about that job at the same time, fresh for each. Under fifty clients on one
    /// 300,000-task job the read's PostgreSQL side was half the machine.
    /// </summary>
    private readonly CoalescedReads<Guid, StatusRead?> _statusReads = new(async (jobId, cancellationToken) =>
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await StatusRead.InOneRoundTripAsync(db, jobId, options.StatusRollupAbove, cancellationToken);
    });

    /// <summary>Stops recounts under way: a process that stops does not finish a count nobody will read.</summary>
    public void Dispose() => _stopping.Cancel();

    public async Task<JobStatus?> StatusAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var read = db.Database.IsNpgsql()
            ? await _statusReads.ReadAsync(jobId, cancellationToken)
            : await ReadStatusAsync(db, jobId, cancellationToken);
        if (read is null)
        {
            return null;
        }

        var head = read.Head;
        var counts = read.Counts;
        var countedAt = read.CountedAt;
        if (counts is null || (head.TaskCount > options.StatusRollupAbove && countedAt is null))
        {
            // The database could not count in the same statements, or a big job was never counted.
            var counted = await TaskCountsAsync(db, [(jobId, head.TaskCount)], cancellationToken);
            counts = counted.Groups;
            countedAt = counted.CountedAt.TryGetValue(jobId, out var at) ? at : null;
        }
        else if (head.TaskCount > options.StatusRollupAbove && countedAt is { } at && IsStale(at))
        {
            RecountInBackground(jobId, at);
        }

        var shotStatuses = read.Shots.Select(s =>
        {
            var own = counts.Where(t => t.ShotId == s.Id).ToList();
            return new ShotStatus(
                s.Id,
                s.Name,
                s.Engine,
                s.State.ToString(),
                s.Error,
                s.FrameCount,
                s.TaskCount,
                own.Where(t => t.State == RenderTaskState.Succeeded).Sum(t => t.Count),
                s.State == ShotState.Succeeded ? 1 : ProgressOf(own),
                s.VideoPath,
                s.ManifestPath,
                s.Flicker,
                Dollars(s.CostMicros),
                s.AnchorPaletteDrift,
                s.AnchorColourDrift);
        }).ToList();

        return new JobStatus(
            head.Id,
            head.Project,
            head.Name,
            head.Lane,
            head.Priority,
            head.State.ToString(),
            head.Error,
            head.CreatedAt,
            head.FinishedAt,
            head.TaskCount,
            counts.Where(t => t.State == RenderTaskState.Succeeded).Sum(t => t.Count),
            head.State == JobState.Succeeded ? 1 : ProgressOf(counts),
            shotStatuses.Sum(s => s.Cost),
            shotStatuses,
            head.Paused,
            head.Retries,
            read.After,
            [.. read.BlockedWorkers.Order(StringComparer.Ordinal)],
            head.TaskCount > options.StatusRollupAbove ? countedAt : null,
            read.Shots.Where(s => s.PlannedAt != null).Sum(s => s.TaskCount),
            WaitingFor(head.State, head.Paused, read.StoppedBy));
    }

    /// <summary>
    /// The status's rows through EF Core (the embedded SQLite farm): the job with its shots and their costs, then its
    /// lists only when it has them; the task counts are left to <see cref="TaskCountsAsync"/>.
    /// </summary>
    private static async Task<StatusRead?> ReadStatusAsync(FarmDbContext db, Guid jobId, CancellationToken cancellationToken)
    {
        // Not the spec: a big job's is kilobytes, read and sent for nothing.
        var row = await db.Jobs.AsNoTracking().Where(j => j.Id == jobId).Select(j => new
        {
            Head = new StatusRead.JobRow(j.Id, j.Project, j.Name, j.Lane, j.Priority, j.State, j.Error, j.CreatedAt, j.FinishedAt, j.TaskCount, j.Paused, j.Retries),
            // Whether, not which: nearly every job has neither, and every collection in the projection multiplies the
            // shots' rows; the lists are read below only for the jobs that have them.
            HasAfter = db.JobDependencies.Any(d => d.JobId == j.Id),
            HasBlockedWorkers = db.JobWorkerFailures.Any(f => f.JobId == j.Id && f.BlockedAt != null),
            StoppedBy = Money.Budgets.StopsInPrecedence(db).Where(s => s.JobId == j.Id).Select(s => s.Budget).FirstOrDefault(),
            Shots = db.Shots.Where(s => s.JobId == j.Id).OrderBy(s => s.Ordinal)
                .Select(s => new StatusRead.ShotRow(
                    s.Id, s.Name, s.Engine, s.State, s.Error, s.FrameCount, s.TaskCount, s.VideoPath, s.ManifestPath, s.Flicker, s.AnchorPaletteDrift, s.AnchorColourDrift, s.PlannedAt,
                    db.UsageRollups.Where(u => u.JobId == s.JobId && u.ShotId == s.Id).Sum(u => (long?)u.CostMicros) ?? 0))
                .ToList(),
        }).SingleOrDefaultAsync(cancellationToken);
        if (row is null)
        {
            return null;
        }

        List<Guid> after = row.HasAfter
            ? await db.JobDependencies.AsNoTracking().Where(d => d.JobId == jobId).Select(d => d.DependsOnJobId).ToListAsync(cancellationToken)
            : [];
        List<string> blockedWorkers = row.HasBlockedWorkers
            ? await db.JobWorkerFailures.AsNoTracking().Where(f => f.JobId == jobId && f.BlockedAt != null).Select(f => f.WorkerId).ToListAsync(cancellationToken)
            : [];
        return new StatusRead(row.Head, row.Shots, after, blockedWorkers, row.StoppedBy, null, null);
    }

    /// <summary>
    /// Why a job that could run gets no new attempts: <c>budget</c> when its project reached its hard limit,
    /// <c>job-budget</c> when the job reached its own (raising that budget resumes it), <c>after</c> while the jobs it
    /// waits for are unfinished; null otherwise. <paramref name="stoppedBy"/> is the job's budget stop, if any.
    /// </summary>
    private static string? WaitingFor(JobState state, bool paused, string? stoppedBy) => state switch
    {
        JobState.Waiting => "after",
        JobState.Queued or JobState.Running when !paused => stoppedBy switch
        {
            "project" => "budget",
            "job" => "job-budget",
            _ => null,
        },
        _ => null,
    };

    /// <summary>
    /// The tasks of several jobs counted per job, shot and state. Jobs of up to <see cref="CoordinatorOptions.StatusRollupAbove"/>
    /// tasks are counted in one grouped query (the rows read grow with those small jobs only); bigger ones are read from
    /// their roll-up, recounted by one reader when older than <see cref="CoordinatorOptions.StatusRollupMaxAge"/>, so the
    /// status, the dashboard's job list and its live view show the same figures and none of them counts a big job per request.
    /// <see cref="TaskCounts.CountedAt"/> says when each rolled-up job was counted.
    /// </summary>
    internal async Task<TaskCounts> TaskCountsAsync(FarmDbContext db, IReadOnlyCollection<(Guid JobId, int TaskCount)> jobs, CancellationToken cancellationToken)
    {
        var big = jobs.Where(j => j.TaskCount > options.StatusRollupAbove).Select(j => j.JobId).ToList();
        var small = jobs.Where(j => j.TaskCount <= options.StatusRollupAbove).Select(j => j.JobId).ToList();
        var countedAt = new Dictionary<Guid, DateTime>();
        foreach (var jobId in big)
        {
            countedAt[jobId] = await CountedAtAsync(db, jobId, cancellationToken);
        }

        var groups = new List<TaskGroup>();
        if (big.Count > 0)
        {
            groups.AddRange(await db.ShotTaskCounts.AsNoTracking().Where(c => big.Contains(c.JobId))
                .Select(c => new TaskGroup(c.JobId, c.ShotId, c.State, c.Tasks, c.Weight, c.WeightedProgress))
                .ToListAsync(cancellationToken));
        }

        if (small.Count > 0)
        {
            groups.AddRange(await db.Tasks.AsNoTracking().Where(t => small.Contains(t.JobId))
                .GroupBy(t => new { t.JobId, t.ShotId, t.State, Assemble = t.Kind == "assemble" || t.Kind == "interpolate" })
                .Select(g => new TaskGroup(g.Key.JobId, g.Key.ShotId, g.Key.State, g.Count(), g.Key.Assemble ? g.Count() : g.Sum(t => t.LastFrame - t.FirstFrame + 1), g.Key.Assemble ? g.Sum(t => t.Progress) : g.Sum(t => (t.LastFrame - t.FirstFrame + 1) * t.Progress)))
                .ToListAsync(cancellationToken));
        }

        return new TaskCounts(groups, countedAt);
    }

    /// <summary>Job cost from the ledger's roll-up, for several jobs in one query (jobs with no ledger rows are absent).</summary>
    internal static async Task<Dictionary<Guid, decimal>> CostPerJobAsync(FarmDbContext db, IReadOnlyCollection<Guid> jobIds, CancellationToken cancellationToken) =>
        (await db.UsageRollups.AsNoTracking().Where(u => jobIds.Contains(u.JobId)).GroupBy(u => u.JobId)
            .Select(g => new { JobId = g.Key, CostMicros = g.Sum(u => u.CostMicros) })
            .ToListAsync(cancellationToken))
        .ToDictionary(g => g.JobId, g => Dollars(g.CostMicros));

    /// <summary>
    /// Records a big job's newly planned tasks as counted now, in the planning transaction: the plan knows its counts,
    /// so the status read that follows a submission does not count a hundred thousand tasks it has just written.
    /// </summary>
    public static async Task RecordPlannedCountsAsync(FarmDbContext db, Guid jobId, IReadOnlyList<Data.Entities.RenderTask> tasks, DateTime now, CancellationToken cancellationToken)
    {
        db.ShotTaskCounts.AddRange(tasks.GroupBy(t => (t.ShotId, t.State)).Select(g => new ShotTaskCount
        {
            JobId = jobId,
            ShotId = g.Key.ShotId,
            State = g.Key.State,
            Tasks = g.Count(),
            Weight = g.Sum(t => t.Kind == "assemble" || t.Kind == "interpolate" ? 1L : t.LastFrame - t.FirstFrame + 1),
        }));
        await db.SaveChangesAsync(cancellationToken);
        await db.Database.ExecuteSqlAsync(
            $"INSERT INTO task_count_rollups (job_id, counted_at) VALUES ({jobId}, {now}) ON CONFLICT (job_id) DO UPDATE SET counted_at = excluded.counted_at",
            cancellationToken);
    }

    /// <summary>A group of tasks' count, weight and weighted progress (see <see cref="TaskGroup"/>), as SQL.</summary>
    internal const string CountedTaskColumns = """
        count(*)::int,
        sum(CASE WHEN kind IN ('assemble', 'interpolate') THEN 1 ELSE last_frame - first_frame + 1 END)::bigint,
        sum(CASE WHEN kind IN ('assemble', 'interpolate') THEN progress ELSE (last_frame - first_frame + 1) * progress END)::float8
        """;

    private const string RecountSql = $$"""
        INSERT INTO shot_task_counts (job_id, shot_id, state, tasks, weight, weighted_progress)
        SELECT job_id, shot_id, state, {{CountedTaskColumns}}
        FROM tasks WHERE job_id = {0} GROUP BY job_id, shot_id, state
        """;

    /// <summary>Advisory lock class of a job's recount; the job id's hash is the key within it.</summary>
    private const int TaskCountLockClass = 0x7066_0001;

    private bool IsStale(DateTime countedAt) => countedAt < time.GetUtcNow().UtcDateTime - options.StatusRollupMaxAge;

    /// <summary>
    /// When a big job's tasks were last counted into <c>shot_task_counts</c>. A job never counted is counted now; a
    /// count older than <see cref="CoordinatorOptions.StatusRollupMaxAge"/> is recounted in the background and the
    /// reader gets the previous one: every reader that came during a recount of 300,000 tasks used to take a slower
    /// path, and those were the status's 95th percentile.
    /// </summary>
    private async Task<DateTime> CountedAtAsync(FarmDbContext db, Guid jobId, CancellationToken cancellationToken)
    {
        var counted = await db.TaskCountRollups.AsNoTracking().Where(r => r.JobId == jobId).Select(r => (DateTime?)r.CountedAt).SingleOrDefaultAsync(cancellationToken);
        if (counted is not { } at)
        {
            return await RollUpTaskCountsAsync(db, jobId, null, cancellationToken);
        }

        if (IsStale(at))
        {
            RecountInBackground(jobId, at);
        }

        return at;
    }

    /// <summary>Recounts a big job's tasks on a connection of its own unless this process is already doing so.</summary>
    private void RecountInBackground(Guid jobId, DateTime countedAt)
    {
        if (!_recounting.TryAdd(jobId, 0))
        {
            return;
        }

        var stopping = _stopping.Token;
        _ = Task.Run(async () =>
        {
            try
            {
                await using var db = await contextFactory.CreateDbContextAsync(stopping);
                await RollUpTaskCountsAsync(db, jobId, countedAt, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                // The roll-up keeps its previous count and says how old it is; the next read past its age tries again.
                logger.LogWarning(e, "Recounting the tasks of job {JobId} failed", jobId);
            }
            finally
            {
                _recounting.TryRemove(jobId, out _);
            }
        }, CancellationToken.None);
    }

    /// <summary>
    /// Counts a big job's tasks again, found stale or never counted (<paramref name="counted"/>, null) by the caller, and
    /// returns when the count in <c>shot_task_counts</c> was taken. One reader recounts: the conditional upsert of
    /// <c>counted_at</c> locks the job's roll-up row, and a reader that got past the advisory lock after it finds it
    /// fresh and counts nothing (several coordinators may find the same count stale).
    /// </summary>
    private async Task<DateTime> RollUpTaskCountsAsync(FarmDbContext db, Guid jobId, DateTime? counted, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var staleBefore = now - options.StatusRollupMaxAge;
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);

        // Readers that find the count stale while another recounts must not queue behind it on the roll-up row's lock:
        // on PostgreSQL they skip at once (SQLite has one writer and the embedded farm few readers).
        if (db.Database.IsNpgsql()
            && !await db.Database.SqlQuery<bool>($"SELECT pg_try_advisory_xact_lock({TaskCountLockClass}, hashtext({jobId}::text)) AS \"Value\"").SingleAsync(cancellationToken))
        {
            return counted ?? now;
        }

        var won = await db.Database.ExecuteSqlAsync(
            $"INSERT INTO task_count_rollups (job_id, counted_at) VALUES ({jobId}, {now}) ON CONFLICT (job_id) DO UPDATE SET counted_at = excluded.counted_at WHERE task_count_rollups.counted_at < {staleBefore}",
            cancellationToken);
        if (won == 0)
        {
            return counted ?? now;
        }

        await db.Database.ExecuteSqlAsync($"DELETE FROM shot_task_counts WHERE job_id = {jobId}", cancellationToken);
        await db.Database.ExecuteSqlRawAsync(RecountSql, [jobId], cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return now;
    }

    /// <summary>
    /// A page of the logs of a job's attempts, optionally of one task (by key) and one attempt number, in task order
    /// after the cursor <paramref name="after"/> (from the previous page's <see cref="LogPage.Next"/>); null for an
    /// unknown job. The page walks the job's tasks by id (index on job and id), so a page costs the same whether the
    /// job has ten tasks or a million.
    /// </summary>
    public async Task<LogPage?> LogsAsync(Guid jobId, string? taskKey, int? attemptNumber, LogCursor after, int limit, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        if (!await db.Jobs.AnyAsync(j => j.Id == jobId, cancellationToken))
        {
            return null;
        }

        var afterTask = after.TaskId;
        var afterNumber = after.Number;
        var tasks = db.Tasks.FromSql($"SELECT * FROM tasks WHERE job_id = {jobId} AND id >= {afterTask}");
        var attempts = await (
            from task in tasks
            join attempt in db.Attempts on task.Id equals attempt.TaskId
            where (taskKey == null || task.Key == taskKey) && (attemptNumber == null || attempt.Number == attemptNumber)
                && (task.Id != afterTask || attempt.Number > afterNumber)
            orderby task.Id, attempt.Number
            select new { TaskId = task.Id, task.Key, attempt.Number, attempt.Id, attempt.State, attempt.WorkerId, attempt.FailureClass, attempt.Error })
            .AsNoTracking()
            .Take(limit + 1)
            .ToListAsync(cancellationToken);
        var page = attempts.Take(limit).ToList();
        var ids = page.Select(a => a.Id).ToList();
        var lines = (await db.AttemptLogLines.AsNoTracking().Where(l => ids.Contains(l.AttemptId)).ToListAsync(cancellationToken))
            .ToLookup(l => l.AttemptId);
        var next = attempts.Count > limit ? new LogCursor(page[^1].TaskId, page[^1].Number).ToString() : null;
        return new LogPage(
            page.Select(a => new AttemptLog(a.Key, a.Number, a.Id, a.State.ToString(), a.WorkerId, a.FailureClass, a.Error, lines[a.Id].OrderBy(l => l.Seq).Select(l => new LogLine(l.LoggedAt, l.Level, l.Message)).ToList())).ToList(),
            next);
    }

    /// <summary>The fleet: every worker seen, with its state and the attempts it runs, read after the call.</summary>
    public Task<IReadOnlyList<WorkerStatus>> WorkersAsync(CancellationToken cancellationToken) => _workers.ReadAsync(cancellationToken);

    private static async Task<IReadOnlyList<WorkerStatus>> ReadWorkersAsync(IDbContextFactory<FarmDbContext> contextFactory, CoordinatorOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        var lostBefore = time.GetUtcNow().UtcDateTime - options.LeaseDuration;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var running = db.Attempts.Where(a => a.State == AttemptState.Claimed && a.WorkerId != null)
            .GroupBy(a => a.WorkerId!)
            .Select(g => new { WorkerId = g.Key, Count = g.Count() });
        return await (
            from w in db.Workers
            join claimed in running on w.Id equals claimed.WorkerId into claims
            from claimed in claims.DefaultIfEmpty()
            orderby w.Id
            select StatusOf(w, (int?)claimed.Count ?? 0, lostBefore))
            .AsNoTracking()
            .ToListAsync(cancellationToken);
    }

    /// <summary>Each worker's state, for views that read the workers and their claimed attempts themselves.</summary>
    internal static IReadOnlyList<WorkerStatus> WorkerStatuses(IEnumerable<Worker> workers, IReadOnlyDictionary<string, int> running, DateTime lostBefore) =>
        [.. workers.Select(w => StatusOf(w, running.GetValueOrDefault(w.Id), lostBefore))];

    /// <summary><c>lost</c> when not seen since <paramref name="lostBefore"/>, else busy or idle by its claimed attempts.</summary>
    private static WorkerStatus StatusOf(Worker w, int runningAttempts, DateTime lostBefore) => new(
        w.Id, w.Pool, w.DeviceSku, w.DeviceCount, w.Slots, w.Hostname,
        w.LastSeenAt < lostBefore ? "lost" : runningAttempts > 0 ? "busy" : "idle",
        w.LastSeenAt, runningAttempts, w.DiffusionEngine, w.DeviceName, w.DeviceMemoryBytes, w.Engines, w.Tags);

    /// <summary>A project's jobs, newest first, <paramref name="limit"/> at a time (the index on project and creation time serves it).</summary>
    public async Task<JobPage> ListAsync(string project, int limit, int offset, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var jobs = db.Jobs.AsNoTracking().Where(j => j.Project == project);
        var total = await jobs.CountAsync(cancellationToken);
        var page = await jobs.OrderByDescending(j => j.CreatedAt).ThenByDescending(j => j.Id).Skip(offset).Take(limit)
            .Select(j => new JobSummary(j.Id, j.Name, j.Lane, j.Priority, j.State.ToString(), j.Paused, j.CreatedAt, j.FinishedAt, j.Error))
            .ToListAsync(cancellationToken);
        return new JobPage(page, total, offset + page.Count < total ? offset + page.Count : null);
    }

    /// <summary>Where a shot's files are, for downloads.</summary>
    public async Task<ShotFiles?> ShotFilesAsync(Guid shotId, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await db.Shots.AsNoTracking().Where(s => s.Id == shotId)
            .Select(s => new ShotFiles(s.Id, s.Name, s.State.ToString(), s.Folder, s.FrameCount, s.VideoPath, s.ManifestPath))
            .SingleOrDefaultAsync(cancellationToken);
    }

    /// <summary>Progress weighs each task by the frames it renders; assembly counts as one frame's worth.</summary>
    internal static double ProgressOf(IReadOnlyCollection<TaskGroup> groups)
    {
        var total = groups.Sum(g => g.Weight);
        var done = groups.Sum(g => g.State == RenderTaskState.Succeeded ? g.Weight : g.WeightedProgress);
        return total == 0 ? 0 : done / total;
    }

    /// <summary>The ledger keeps micro-dollars, exact under summing; answers are in dollars.</summary>
    private static decimal Dollars(long micros) => micros / 1_000_000m;

    public async Task<JobCost?> CostAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await CostAsync(db, jobId, cancellationToken);
    }

    /// <summary>Cost from the ledger's roll-up.</summary>
    public static async Task<JobCost?> CostAsync(FarmDbContext db, Guid jobId, CancellationToken cancellationToken)
    {
        var read = db.Database.IsNpgsql() ? await CostInOneRoundTripAsync(db, jobId, cancellationToken) : await CostReadAsync(db, jobId, cancellationToken);
        if (read is null)
        {
            return null;
        }

        var (project, shots, usage) = read;

        const double JoulesPerKilowattHour = 3.6e6;
        return new JobCost(
            jobId,
            project,
            "USD",
            usage.Sum(u => u.Cost),
            usage.Sum(u => u.DeviceSeconds),
            usage.Sum(u => u.EnergyJoules) / JoulesPerKilowattHour,
            usage.Any(u => u.EnergyEstimated),
            usage.Sum(u => u.Attempts),
            shots.Select(s =>
            {
                var own = usage.Where(u => u.ShotId == s.Id).ToList();
                return new ShotCost(s.Id, s.Name, own.Sum(u => u.Cost), own.Sum(u => u.DeviceSeconds), own.Sum(u => u.EnergyJoules) / JoulesPerKilowattHour, own.Sum(u => u.Attempts), own.Sum(u => u.Co2eGrams));
            }).ToList(),
            usage.GroupBy(u => (u.DeviceSku, u.DollarsPerHour))
                .Select(g => new SkuCost(g.Key.DeviceSku, g.Key.DollarsPerHour, g.Sum(u => u.Cost), g.Sum(u => u.DeviceSeconds)))
                .OrderBy(s => s.DeviceSku, StringComparer.Ordinal)
                .ToList(),
            usage.Sum(u => u.Co2eGrams));
    }

    private static async Task<CostRows?> CostReadAsync(FarmDbContext db, Guid jobId, CancellationToken cancellationToken)
    {
        var job = await db.Jobs.AsNoTracking().Where(j => j.Id == jobId)
            .Select(j => new { j.Project, Shots = j.Shots.OrderBy(s => s.Ordinal).Select(s => new { s.Id, s.Name }).ToList() })
            .SingleOrDefaultAsync(cancellationToken);
        return job is null ? null : new CostRows(job.Project, [.. job.Shots.Select(s => (s.Id, s.Name))], await UsageGroupsAsync(db, jobId, cancellationToken));
    }

    /// <summary>
    /// The job, its shots and its roll-up rows sent to PostgreSQL as one batch: under fifty clients a read costs what
    /// its round trips cost (a big job's cost was two, and its p95 had no margin left at a million tasks).
    /// </summary>
    private static async Task<CostRows?> CostInOneRoundTripAsync(FarmDbContext db, Guid jobId, CancellationToken cancellationToken)
    {
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var batch = new NpgsqlBatch(connection)
            {
                BatchCommands =
                {
                    StatusRead.Command("SELECT project FROM jobs WHERE id = $1", jobId),
                    StatusRead.Command("SELECT id, name FROM shots WHERE job_id = $1 ORDER BY ordinal", jobId),
                    StatusRead.Command(
                        "SELECT shot_id, device_sku, dollars_per_hour, energy_estimated, attempts, cost_micros, device_seconds, energy_joules, co2e_grams FROM usage_rollups WHERE job_id = $1",
                        jobId),
                },
            };
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                return null;
            }

            var project = reader.GetString(0);
            await reader.NextResultAsync(cancellationToken);
            var shots = new List<(Guid Id, string Name)>();
            while (await reader.ReadAsync(cancellationToken))
            {
                shots.Add((reader.GetGuid(0), reader.GetString(1)));
            }

            await reader.NextResultAsync(cancellationToken);
            var usage = new List<UsageGroup>();
            while (await reader.ReadAsync(cancellationToken))
            {
                usage.Add(new UsageGroup(
                    reader.GetGuid(0), reader.GetString(1), reader.GetDecimal(2), reader.GetBoolean(3), reader.GetInt32(4), Dollars(reader.GetInt64(5)),
                    reader.GetDouble(6), reader.GetDouble(7), reader.GetDouble(8)));
            }

            return new CostRows(project, shots, usage);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private sealed record CostRows(string Project, List<(Guid Id, string Name)> Shots, List<UsageGroup> Usage);

    /// <summary>The job's ledger summed per shot, price and energy kind: its roll-up rows, kept by a trigger on the ledger.</summary>
    private static async Task<List<UsageGroup>> UsageGroupsAsync(FarmDbContext db, Guid jobId, CancellationToken cancellationToken) =>
        (await db.UsageRollups.AsNoTracking().Where(u => u.JobId == jobId).ToListAsync(cancellationToken))
            .Select(u => new UsageGroup(u.ShotId, u.DeviceSku, u.DollarsPerHour, u.EnergyEstimated, u.Attempts, Dollars(u.CostMicros), u.DeviceSeconds, u.EnergyJoules, u.Co2eGrams))
            .ToList();

    private sealed record UsageGroup(Guid ShotId, string DeviceSku, decimal DollarsPerHour, bool EnergyEstimated, int Attempts, decimal Cost, double DeviceSeconds, double EnergyJoules, double Co2eGrams);

    /// <summary>Tasks of one shot in one state: how many, their weight (frames; assembly counts one) and weighted progress.</summary>
    internal sealed record TaskGroup(Guid JobId, Guid ShotId, RenderTaskState State, int Count, long Weight, double WeightedProgress);

    /// <summary>Task groups of several jobs, and when each job counted from its roll-up was counted.</summary>
    internal sealed record TaskCounts(IReadOnlyList<TaskGroup> Groups, IReadOnlyDictionary<Guid, DateTime> CountedAt);
}

/// <summary>Where a page of attempt logs ends: the task (ids are time-ordered, so this is plan order) and attempt number.</summary>
public readonly record struct LogCursor(Guid TaskId, int Number)
{
    public static LogCursor Start => new(Guid.Empty, 0);

    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{TaskId:N}.{Number}");

    public static bool TryParse(string? text, out LogCursor cursor)
    {
        cursor = Start;
        if (text is null)
        {
            return true;
        }

        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot < 0 || !Guid.TryParseExact(text.AsSpan(0, dot), "N", out var task)
            || !int.TryParse(text.AsSpan(dot + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number))
        {
            return false;
        }

        cursor = new LogCursor(task, number);
        return true;
    }
}
