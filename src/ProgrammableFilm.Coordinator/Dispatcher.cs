using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Scheduling;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Messaging;
using Contract = ProgrammableFilm.Contracts;

using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// Database-first dispatch: picks Ready tasks in scheduling order (lane, then the projects' fair share, then priority,
/// then age; see <see cref="FairShare"/>), places each in the smallest pool of live workers that fits it, gives it a
/// new attempt in a committed transaction, and only then sends the attempts to that pool's queue, short ones several
/// to a <c>RenderBundle</c> (<see cref="Bundling"/>). Each queue is kept shallow (two messages per live worker slot, at
/// least <see cref="CoordinatorOptions.MaxQueuedPerPool"/>) so that the order is decided here, not by the broker.
/// </summary>
public sealed class Dispatcher(
    IDbContextFactory<FarmDbContext> contextFactory,
    IBus bus,
    BusOptions busOptions,
    CoordinatorOptions options,
    DispatchSignal signal,
    TimeProvider time,
    FarmMetrics metrics,
    ILogger<Dispatcher> logger) : BackgroundService
{
    private const int QueuedPerSlot = 2;

    /// <summary>The live workers and the projects' weights change slowly; read once a second, not on every pass.</summary>
    private static readonly TimeSpan FleetViewAge = TimeSpan.FromSeconds(1);

    private FleetView? _fleet;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await DispatchReadyAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The database is the source of truth: whatever this pass did not finish, the next pass sees again.
                logger.LogWarning(e, "Dispatch pass failed; retrying after the poll interval");
            }

            try
            {
                await signal.WaitAsync(options.PollInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Dispatches until every pool's queue is full or nothing Ready fits; returns the number dispatched.</summary>
    public async Task<int> DispatchReadyAsync(CancellationToken cancellationToken)
    {
        var dispatched = 0;
        while (true)
        {
            await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
            var now = time.GetUtcNow().UtcDateTime;
            var pools = await PoolCapacitiesAsync(db, now, cancellationToken);
            var room = pools.Sum(p => Math.Max(0, p.Room));
            if (room <= 0)
            {
                return dispatched;
            }

            var candidates = await ReadyCandidatesAsync(db, (int)Math.Ceiling(room), options, now, cancellationToken);
            if (candidates.Count == 0)
            {
                return dispatched;
            }

            var live = await LiveAttemptsByProjectAsync(db, cancellationToken);
            var weights = (await FleetAsync(db, now, cancellationToken)).Weights;
            var plan = FairShare.Plan(candidates, live, weights, pools);
            if (plan.Count == 0)
            {
                return dispatched;
            }

            // Crash point: the attempts are committed as Queued but may never be sent. RepublishUnclaimedAsync sends
            // them again later; the worker's claim makes a second delivery harmless. The sends go out together: each
            // waits for the broker's confirm, and one at a time that wait is the pass's cost.
            var bundles = await CreateAttemptsAsync(plan, cancellationToken);
            await Task.WhenAll(bundles.Select(sent => SendAsync(sent.Tasks, sent.Pool, cancellationToken)));
            var sent = bundles.Sum(b => b.Tasks.Count);
            dispatched += sent;
            if (sent == 0)
            {
                return dispatched;
            }
        }
    }

    /// <summary>
    /// The pools of the live workers, each with room for a few messages per slot: enough that no slot waits for the
    /// next dispatch pass, few enough that the order is still decided here rather than by the broker's FIFO. Before
    /// any worker has been seen, the coordinator's own pool takes <see cref="CoordinatorOptions.MaxQueuedPerPool"/>.
    /// </summary>
    private async Task<List<PoolCapacity>> PoolCapacitiesAsync(FarmDbContext db, DateTime now, CancellationToken cancellationToken)
    {
        var workers = (await FleetAsync(db, now, cancellationToken)).Workers;
        // In messages: a bundle of n queued attempts is one message, whichever of them are counted.
        var queued = await db.Attempts.Where(a => a.State == AttemptState.Queued)
            .GroupBy(a => a.Pool)
            .Select(g => new { Pool = g.Key, Messages = g.Sum(a => 1.0 / a.BundleSize) })
            .ToDictionaryAsync(g => g.Pool, g => g.Messages, StringComparer.Ordinal, cancellationToken);
        var pools = workers.GroupBy(w => w.Pool, StringComparer.Ordinal).Select(pool => new PoolCapacity(
            pool.Key,
            Math.Max(options.MaxQueuedPerPool, QueuedPerSlot * pool.Sum(w => w.Slots)) - queued.GetValueOrDefault(pool.Key),
            pool.Any(w => w.DeviceMemoryBytes == 0) ? 0 : pool.Min(w => w.DeviceMemoryBytes),
            pool.Any(w => w.Engines is null) ? null : pool.Select(w => WorkerEngines(w.Engines)).Aggregate((all, each) => [.. all.Intersect(each, StringComparer.Ordinal)])))
            .ToList();
        if (pools.Count == 0)
        {
            pools.Add(new PoolCapacity(options.Pool, options.MaxQueuedPerPool - queued.GetValueOrDefault(options.Pool), 0, null));
        }

        return pools;
    }

    /// <summary>Queued or claimed attempts per project: what the fair share counts against each project's weight.</summary>
    public static Task<Dictionary<string, int>> LiveAttemptsByProjectAsync(FarmDbContext db, CancellationToken cancellationToken) => (
        from attempt in db.Attempts
        join task in db.Tasks on attempt.TaskId equals task.Id
        join job in db.Jobs on task.JobId equals job.Id
        where attempt.State == AttemptState.Queued || attempt.State == AttemptState.Claimed
        group attempt by job.Project into byProject
        select new { Project = byProject.Key, Count = byProject.Count() })
        .ToDictionaryAsync(p => p.Project, p => p.Count, StringComparer.Ordinal, cancellationToken);

    /// <summary>A weight just set here takes effect on the next pass (other coordinators see it within a second).</summary>
    public void ForgetFleetView() => _fleet = null;

    private async Task<FleetView> FleetAsync(FarmDbContext db, DateTime now, CancellationToken cancellationToken)
    {
        // Aged by the machine's clock, not the farm's (which tests may hold still): this is a cache, not a rule.
        if (_fleet is { } fleet && System.Diagnostics.Stopwatch.GetElapsedTime(fleet.ReadAt) < FleetViewAge)
        {
            return fleet;
        }

        var liveSince = now - options.LeaseDuration;
        var workers = await db.Workers.Where(w => w.LastSeenAt >= liveSince)
            .Select(w => new LiveWorker(w.Pool, w.Slots, w.DeviceMemoryBytes, w.Engines))
            .ToListAsync(cancellationToken);
        var weights = await db.ProjectShares.AsNoTracking().ToDictionaryAsync(s => s.Project, s => s.Weight, StringComparer.Ordinal, cancellationToken);
        _fleet = new FleetView(System.Diagnostics.Stopwatch.GetTimestamp(), workers, weights);
        return _fleet;
    }

    private sealed record LiveWorker(string Pool, int Slots, long DeviceMemoryBytes, string? Engines);

    private sealed record FleetView(long ReadAt, List<LiveWorker> Workers, Dictionary<string, double> Weights);

    private static HashSet<string> WorkerEngines(string? engines) =>
        [.. (engines ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    /// <summary>
    /// Each runnable job's next Ready tasks in its own order, so that a job with a million tasks queued hides nobody
    /// else's work; the order across jobs and projects is the fair share's. The pass sends at most
    /// <paramref name="messages"/> messages, each up to <see cref="CoordinatorOptions.MaxBundle"/> attempts: a job
    /// gives that many bundles' worth shared with the other runnable jobs, and never fewer than a task per message.
    /// A task waits out its retry backoff; a paused, waiting or finished job gets no new attempts, nor does a job whose
    /// project or own hard budget is reached (<c>budget_stops</c>: primary-key reads of the budgets and the trigger-kept
    /// spend, never a sum of the ledger).
    /// </summary>
    private static async Task<List<ReadyTask>> ReadyCandidatesAsync(FarmDbContext db, int messages, CoordinatorOptions options, DateTime now, CancellationToken cancellationToken)
    {
        var tasks = messages * options.MaxBundle;
        List<CandidateRow> rows;
        if (db.Database.IsNpgsql())
        {
            rows = await db.Database.SqlQuery<CandidateRow>($"""
                WITH runnable AS (
                    SELECT j.id, j.project FROM jobs AS j
                    WHERE j.state IN ('Queued', 'Running') AND NOT j.paused
                      AND NOT EXISTS (SELECT 1 FROM budget_stops AS st WHERE st.job_id = j.id)
                ), counted AS (SELECT count(*) AS jobs FROM runnable)
                SELECT t.id AS "Id", j.project AS "Project", t.lane AS "Lane", t.priority AS "Priority", t.created_at AS "CreatedAt",
                       t.first_frame AS "FirstFrame", t.last_frame AS "LastFrame", t.max_frame_batch AS "MaxFrameBatch",
                       t.min_memory_bytes AS "MinMemoryBytes", t.kind AS "Kind", s.engine AS "Engine", s.width AS "Width", s.height AS "Height", s.steps AS "Steps"
                FROM runnable AS j
                CROSS JOIN counted AS n
                CROSS JOIN LATERAL (
                    SELECT * FROM tasks AS r
                    WHERE r.job_id = j.id AND r.state = 'Ready' AND (r.not_before IS NULL OR r.not_before <= {now})
                    ORDER BY r.lane, r.priority DESC, r.created_at, r.first_frame
                    LIMIT GREATEST({messages}, {tasks} / n.jobs)) AS t
                JOIN shots AS s ON s.id = t.shot_id
                """).ToListAsync(cancellationToken);
        }
        else
        {
            // Embedded mode serves one studio machine: the plain dispatch order is enough there.
            rows = await (
                from task in db.Tasks
                join job in db.Jobs on task.JobId equals job.Id
                join shot in db.Shots on task.ShotId equals shot.Id
                where task.State == RenderTaskState.Ready && (task.NotBefore == null || task.NotBefore <= now)
                    && (job.State == JobState.Queued || job.State == JobState.Running) && !job.Paused
                    && !db.BudgetStops.Any(s => s.JobId == job.Id)
                orderby task.Lane, task.Priority descending, task.CreatedAt, task.FirstFrame
                select new CandidateRow
                {
                    Id = task.Id, Project = job.Project, Lane = task.Lane, Priority = task.Priority, CreatedAt = task.CreatedAt,
                    FirstFrame = task.FirstFrame, LastFrame = task.LastFrame, MaxFrameBatch = task.MaxFrameBatch,
                    MinMemoryBytes = task.MinMemoryBytes, Kind = task.Kind, Engine = shot.Engine, Width = shot.Width, Height = shot.Height, Steps = shot.Steps,
                })
                .Take(tasks)
                .ToListAsync(cancellationToken);
        }

        return [.. rows.Select(row =>
        {
            var frames = row.LastFrame - row.FirstFrame + 1;
            return new ReadyTask(
                row.Id, row.Project, row.Lane, row.Priority, row.CreatedAt, row.FirstFrame, row.Engine,
                Math.Max(row.MinMemoryBytes, TaskRequirements.MinimumMemoryBytes(row.Engine, row.Width, row.Height, Math.Min(frames, row.MaxFrameBatch ?? int.MaxValue))),
                Bundling.Size(row.Engine, Enum.Parse<Domain.Planning.TaskKind>(row.Kind, ignoreCase: true), row.Width, row.Height, row.Steps, frames, options.BundleSeconds, options.MaxBundle));
        })];
    }

    /// <summary>A Ready task as the candidate query reads it.</summary>
    private sealed class CandidateRow
    {
        public Guid Id { get; init; }

        public required string Project { get; init; }

        public int Lane { get; init; }

        public int Priority { get; init; }

        public DateTime CreatedAt { get; init; }

        public int FirstFrame { get; init; }

        public int LastFrame { get; init; }

        public int? MaxFrameBatch { get; init; }

        public long MinMemoryBytes { get; init; }

        public required string Kind { get; init; }

        public required string Engine { get; init; }

        public int Width { get; init; }

        public int Height { get; init; }

        public int Steps { get; init; }
    }

    /// <summary>
    /// Gives each planned task a new attempt in its pool, all in one transaction (commits are the scarce resource), and
    /// groups the attempts into bundles: consecutive in the plan's order, of one pool and one bundle size. A task that
    /// is no longer Ready (another dispatcher took it) is skipped.
    /// </summary>
    private async Task<List<(List<Contract.RenderTask> Tasks, string Pool)>> CreateAttemptsAsync(IReadOnlyList<(ReadyTask Task, string Pool)> plan, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        var pools = plan.ToDictionary(p => p.Task.Id, p => p.Pool);
        var bundleSizes = plan.ToDictionary(p => p.Task.Id, p => p.Task.BundleSize);
        var proposed = plan.Select(p => (AttemptId: Guid.CreateVersion7(), TaskId: p.Task.Id)).ToList();
        var taken = await TakeReadyAsync(db, proposed, now, cancellationToken);

        var takenIds = taken.Select(t => t.TaskId).ToList();
        var rows = await (
            from task in db.Tasks
            join shot in db.Shots on task.ShotId equals shot.Id
            where takenIds.Contains(task.Id)
            select new { Task = task, Shot = shot })
            .AsNoTracking()
            .ToDictionaryAsync(row => row.Task.Id, cancellationToken);
        var bundles = new List<(List<Contract.RenderTask> Tasks, string Pool)>();
        var attempts = new List<Attempt>(taken.Count);
        foreach (var group in taken.GroupBy(t => (Pool: pools[t.TaskId], Size: bundleSizes[t.TaskId])))
        {
            foreach (var chunk in group.Chunk(group.Key.Size))
            {
                var bundle = new List<Contract.RenderTask>(chunk.Length);
                foreach (var (attemptId, taskId) in chunk)
                {
                    var row = rows[taskId];
                    attempts.Add(new Attempt
                    {
                        Id = attemptId,
                        TaskId = taskId,
                        Number = row.Task.AttemptCount,
                        State = AttemptState.Queued,
                        Pool = group.Key.Pool,
                        BundleSize = chunk.Length,
                        CreatedAt = now,
                        PublishedAt = now,
                    });
                    bundle.Add(ToMessage(attemptId, row.Task, row.Shot));
                    metrics.Dispatched(row.Task, group.Key.Pool, now);
                }

                bundles.Add((bundle, group.Key.Pool));
            }
        }

        await InsertQueuedAsync(db, attempts, now, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return bundles;
    }

    /// <summary>The new attempts, Queued; one statement on PostgreSQL (a pass may create a thousand).</summary>
    private static async Task InsertQueuedAsync(FarmDbContext db, List<Attempt> attempts, DateTime now, CancellationToken cancellationToken)
    {
        if (!db.Database.IsNpgsql())
        {
            db.Attempts.AddRange(attempts);
            await db.SaveChangesAsync(cancellationToken);
            return;
        }

        Guid[] ids = [.. attempts.Select(a => a.Id)], taskIds = [.. attempts.Select(a => a.TaskId)];
        int[] numbers = [.. attempts.Select(a => a.Number)], bundleSizes = [.. attempts.Select(a => a.BundleSize)];
        string[] pools = [.. attempts.Select(a => a.Pool)];
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO attempts (id, task_id, number, state, pool, created_at, published_at, bundle_size)
            SELECT a.id, a.task_id, a.number, 'Queued', a.pool, {now}, {now}, a.bundle_size
            FROM unnest({ids}, {taskIds}, {numbers}, {pools}, {bundleSizes}) AS a(id, task_id, number, pool, bundle_size)
            """, cancellationToken);
    }

    /// <summary>
    /// Moves each proposed task <c>Ready → Dispatched</c> with its new attempt as the current one; a task that is no
    /// longer Ready (another dispatcher took it) is skipped. PostgreSQL does them in one statement.
    /// </summary>
    private static async Task<List<(Guid AttemptId, Guid TaskId)>> TakeReadyAsync(FarmDbContext db, List<(Guid AttemptId, Guid TaskId)> proposed, DateTime now, CancellationToken cancellationToken)
    {
        if (db.Database.IsNpgsql())
        {
            var taskIds = proposed.Select(p => p.TaskId).ToArray();
            var attemptIds = proposed.Select(p => p.AttemptId).ToArray();
            var updated = await db.Database.SqlQuery<Guid>($"""
                UPDATE tasks AS t
                SET state = 'Dispatched', current_attempt_id = v.attempt_id, attempt_count = t.attempt_count + 1, updated_at = {now}
                FROM unnest({taskIds}, {attemptIds}) AS v(task_id, attempt_id)
                WHERE t.id = v.task_id AND t.state = 'Ready'
                RETURNING t.id AS "Value"
                """).ToListAsync(cancellationToken);
            var won = updated.ToHashSet();
            return [.. proposed.Where(p => won.Contains(p.TaskId))];
        }

        var taken = new List<(Guid AttemptId, Guid TaskId)>();
        foreach (var (attemptId, taskId) in proposed)
        {
            var updated = await db.Tasks
                .Where(t => t.Id == taskId && t.State == RenderTaskState.Ready)
                .ExecuteUpdateAsync(
                    set => set.SetProperty(t => t.State, RenderTaskState.Dispatched)
                        .SetProperty(t => t.CurrentAttemptId, attemptId)
                        .SetProperty(t => t.AttemptCount, t => t.AttemptCount + 1)
                        .SetProperty(t => t.UpdatedAt, now),
                    cancellationToken);
            if (updated == 1)
            {
                taken.Add((attemptId, taskId));
            }
        }

        return taken;
    }

    /// <summary>
    /// Sends again the attempts published long ago and still unclaimed: the message may have been lost with a broker
    /// restart or dropped by a worker whose claim timed out. Run by the maintenance schedule, not on every pass.
    /// </summary>
    public async Task<int> RepublishUnclaimedAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var staleBefore = now - options.RepublishAfter;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var stale = await (
            from attempt in db.Attempts
            join task in db.Tasks on attempt.TaskId equals task.Id
            join shot in db.Shots on task.ShotId equals shot.Id
            where attempt.State == AttemptState.Queued && attempt.PublishedAt < staleBefore && task.CurrentAttemptId == attempt.Id
            select new { AttemptId = attempt.Id, attempt.Pool, Task = task, Shot = shot })
            .AsNoTracking()
            .ToListAsync(cancellationToken);
        foreach (var item in stale)
        {
            logger.LogInformation("Attempt {AttemptId} unclaimed since {Since}; publishing it again", item.AttemptId, staleBefore);
            // Marked first: a send that fails is retried by a later sweep, and whoever sees the copy sees the mark. It
            // goes alone, and counts so in its pool's queue.
            await db.Attempts.Where(a => a.Id == item.AttemptId && a.State == AttemptState.Queued)
                .ExecuteUpdateAsync(set => set.SetProperty(a => a.PublishedAt, now).SetProperty(a => a.BundleSize, 1), cancellationToken);
            await SendAsync([ToMessage(item.AttemptId, item.Task, item.Shot)], item.Pool, cancellationToken);
        }

        return stale.Count;
    }

    /// <summary>
    /// Sends a bundle. Each attempt has a trace of its own, which its worker's run continues; the message is traced on
    /// its own too, linked to the attempts it carries (an async method, so concurrent sends do not share a current span).
    /// </summary>
    private async Task SendAsync(List<Contract.RenderTask> tasks, string pool, CancellationToken cancellationToken)
    {
        Contract.RenderTask[] traced = [.. tasks.Select(FarmMetrics.TraceDispatch)];
        using var activity = FarmMetrics.StartBundleSend(traced, pool);
        var endpoint = await bus.GetSendEndpoint(new Uri($"queue:{busOptions.RenderQueue(pool)}"));
        await endpoint.Send(new Contract.RenderBundle { Tasks = traced }, cancellationToken);
    }

    private static Contract.RenderTask ToMessage(Guid attemptId, RenderTask task, Shot shot) => new()
    {
        AttemptId = attemptId,
        TaskId = task.Id,
        JobId = task.JobId,
        ShotId = task.ShotId,
        Kind = task.Kind,
        Engine = shot.Engine,
        Prompt = shot.Prompt,
        Width = shot.Width,
        Height = shot.Height,
        Fps = shot.Fps,
        Interpolate = shot.Interpolate,
        Steps = shot.Steps,
        Guidance = shot.Guidance,
        Seed = shot.Seed,
        TotalFrames = shot.FrameCount,
        Frames = Enumerable.Range(task.FirstFrame, task.LastFrame - task.FirstFrame + 1).ToArray(),
        StartKeyframe = task.StartKeyframe,
        EndKeyframe = task.EndKeyframe,
        ShotFolder = shot.Folder,
        CopyTo = task.CopyTo?.Split('\n') ?? [],
        Keyframes = task.Kind == "assemble" ? [.. Domain.Planning.ShotPlanner.Keyframes(shot.FrameCount, shot.KeyframeInterval)] : [],
        MaxFrameBatch = task.MaxFrameBatch,
        PlateFolder = shot.PlateId is { } plate ? ShotStorage.PlateFolder(plate) : null,
        PlateStrength = shot.PlateStrengths is null || task.Kind != "keyframe"
            ? shot.PlateStrength
            : PlateSpec.StrengthAt(shot.PlateStrength ?? 1, PlateSpec.Parse(shot.PlateStrengths), Domain.Planning.ShotPlanner.KeyframeIndex(task.FirstFrame, shot.KeyframeInterval)),
        AnchorBackground = shot.AnchorBackground,
        AnchorColour = shot.AnchorColour,
        JobTraceParent = shot.TraceParent,
    };
}
