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
    RenderQueueDepths queueDepths,
    ILogger<Dispatcher> logger) : BackgroundService, IHostedLifecycleService
{
    private const int QueuedPerSlot = 2;

    private const int FirstLane = (int)Lane.Preview;

    /// <summary>The live workers and the projects' weights change slowly; read once a second, not on every pass.</summary>
    private static readonly TimeSpan FleetViewAge = TimeSpan.FromSeconds(1);

    private FleetView? _fleet;

    private int _fleetGeneration;

    private Task? _fleetRefresh;

    private readonly ShareCredit _shareCredit = new(TimeSpan.FromSeconds(2));

    private IReadOnlyDictionary<string, double>? _shareCredits;

    private long _shareCreditUpdatedAt = System.Diagnostics.Stopwatch.GetTimestamp();

    private static readonly TimeSpan LastPassPatience = TimeSpan.FromSeconds(5);

    /// <summary>Ends the loop after the pass under way, which still sends what it committed.</summary>
    private readonly CancellationTokenSource _lastPass = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, _lastPass.Token);
        while (!stopping.IsCancellationRequested)
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
                await signal.WaitAsync(options.PollInterval, stopping.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Lets the pass under way finish before any hosted service stops, the bus among them: stopped first (it is
    /// registered after the coordinator), the bus cancelled the pass's sends of attempts it had just committed, which
    /// then waited for the republish sweep (<see cref="CoordinatorOptions.RepublishAfter"/> or more), and each stop
    /// logged the cancelled send as a fault. A pass that cannot finish (its database gone) is waited for a few
    /// seconds only, then cancelled as before.
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        await _lastPass.CancelAsync();
        if (ExecuteTask is { } loop)
        {
            await loop.WaitAsync(LastPassPatience, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Dispose()
    {
        _lastPass.Dispose();
        base.Dispose();
    }

    /// <summary>Dispatches until every pool's queue is full or nothing Ready fits; returns the number dispatched.</summary>
    public async Task<int> DispatchReadyAsync(CancellationToken cancellationToken)
    {
        var dispatched = 0;
        while (true)
        {
            await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
            var now = time.GetUtcNow().UtcDateTime;
            var live = await LiveAttemptsAsync(db, cancellationToken);
            var pools = await PoolCapacitiesAsync(db, live, now, cancellationToken);
            // A full queue of batch work still has room for preview tasks: then only the preview lane is read.
            var room = pools.Sum(p => Math.Max(0, p.RoomFor(FirstLane)));
            if (room <= 0)
            {
                return dispatched;
            }

            var lanes = pools.Any(p => p.Room > 0) ? int.MaxValue : FirstLane;
            var candidates = await ReadyCandidatesAsync(db, (int)Math.Ceiling(room), lanes, options, now, cancellationToken);
            if (candidates.Count == 0)
            {
                return dispatched;
            }

            var weights = (await FleetAsync(db, now, cancellationToken)).Weights;
            var occupancy = ByProject(live);
            var cutShort = CutShort(candidates, (int)Math.Ceiling(room), options);
            var plan = FairShare.Plan([.. candidates.Select(c => c.Ready)], occupancy, weights, pools, cutShort, _shareCredits);
            foreach (var (task, _) in plan)
            {
                occupancy[task.Project] = occupancy.GetValueOrDefault(task.Project) + 1;
            }

            UpdateShareCredit(occupancy, [.. candidates.Select(c => c.Ready.Project)], weights);
            if (plan.Count == 0)
            {
                return dispatched;
            }

            // Crash point: the attempts are committed as Queued but may never be sent. RepublishUnclaimedAsync sends
            // them again later; the worker's claim makes a second delivery harmless. The sends go out together: each
            // waits for the broker's confirm, and one at a time that wait is the pass's cost.
            var bundles = await CreateAttemptsAsync(plan, candidates.ToDictionary(c => c.Ready.Id, c => c.Row), cancellationToken);
            await Task.WhenAll(bundles.Select(sent => SendAsync(sent.Tasks, sent.Pool, cancellationToken)));
            var sent = bundles.Sum(b => b.Tasks.Count);
            dispatched += sent;

            // Every Ready task the query saw went out and it held none back (no job's limit, nor embedded mode's overall
            // one, was reached): another pass would read and find nothing (a task that becomes Ready later wakes the
            // dispatcher itself), beside the claims of what was just sent, on the same cores and database.
            var drained = sent == candidates.Count && cutShort.Count == 0 && candidates.Count < Math.Ceiling(room) * options.MaxBundle;
            if (sent == 0 || drained)
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
    private async Task<List<PoolCapacity>> PoolCapacitiesAsync(FarmDbContext db, List<LiveAttempts> live, DateTime now, CancellationToken cancellationToken)
    {
        var workers = (await FleetAsync(db, now, cancellationToken)).Workers;
        var queued = live.Where(l => l.State == AttemptState.Queued).GroupBy(l => l.Pool, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.GroupBy(l => l.Lane).ToDictionary(lane => lane.Key, lane => lane.Sum(l => l.Messages)), StringComparer.Ordinal);
        double Queued(string pool) => queued.GetValueOrDefault(pool)?.Values.Sum() ?? 0;
        var pools = workers.GroupBy(w => w.Pool, StringComparer.Ordinal).Select(pool => new PoolCapacity(
            pool.Key,
            Math.Max(options.MaxQueuedPerPool, QueuedPerSlot * pool.Sum(w => w.Slots)) - Queued(pool.Key),
            pool.Any(w => w.DeviceMemoryBytes == 0) ? 0 : pool.Min(w => w.DeviceMemoryBytes),
            pool.Any(w => w.Engines is null) ? null : pool.Select(w => WorkerEngines(w.Engines)).Aggregate((all, each) => [.. all.Intersect(each, StringComparer.Ordinal)]),
            queued.GetValueOrDefault(pool.Key)))
            .ToList();
        if (pools.Count == 0)
        {
            pools.Add(new PoolCapacity(options.Pool, options.MaxQueuedPerPool - Queued(options.Pool), 0, null, queued.GetValueOrDefault(options.Pool)));
        }

        return pools;
    }

    /// <summary>
    /// Queued and claimed attempts by pool, project, lane and state, in one read of the live attempts alone (each
    /// carries its task's project and lane from its dispatch): the pools' queued messages (a bundle of n queued
    /// attempts is one message, whichever of them are counted) and the projects' occupancy both come from it.
    /// </summary>
    private static Task<List<LiveAttempts>> LiveAttemptsAsync(FarmDbContext db, CancellationToken cancellationToken) => (
        from attempt in db.Attempts
        where attempt.State == AttemptState.Queued || attempt.State == AttemptState.Claimed
        group attempt by new { attempt.Pool, attempt.Project, attempt.Lane, attempt.State } into g
        select new LiveAttempts(g.Key.Pool, g.Key.Project!, g.Key.Lane!.Value, g.Key.State, g.Count(), g.Sum(a => 1.0 / a.BundleSize)))
        .ToListAsync(cancellationToken);

    private sealed record LiveAttempts(string Pool, string Project, int Lane, AttemptState State, int Attempts, double Messages);

    /// <summary>Queued or claimed attempts per project: what the fair share counts against each project's weight.</summary>
    public static async Task<Dictionary<string, int>> LiveAttemptsByProjectAsync(FarmDbContext db, CancellationToken cancellationToken) =>
        ByProject(await LiveAttemptsAsync(db, cancellationToken));

    private static Dictionary<string, int> ByProject(List<LiveAttempts> live) =>
        live.GroupBy(l => l.Project, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Sum(l => l.Attempts), StringComparer.Ordinal);

    /// <summary>
    /// Credits the projects for the time the last pass's occupancy was held and keeps this pass's for the next; the
    /// next pass plans with the credit. Timed by the machine's clock, as the fleet view is.
    /// </summary>
    private void UpdateShareCredit(Dictionary<string, int> occupancy, HashSet<string> contending, Dictionary<string, double> weights)
    {
        var previous = Interlocked.Exchange(ref _shareCreditUpdatedAt, System.Diagnostics.Stopwatch.GetTimestamp());
        _shareCredits = _shareCredit.Update(occupancy, contending, weights, System.Diagnostics.Stopwatch.GetElapsedTime(previous));
    }

    /// <summary>A weight just set here takes effect on the next pass (other coordinators see it within a second).</summary>
    public void ForgetFleetView()
    {
        Interlocked.Increment(ref _fleetGeneration);
        _fleet = null;
    }

    /// <summary>
    /// The live workers and the weights, aged by the machine's clock, not the farm's (which tests may hold still):
    /// this is a cache, not a rule. A view older than <see cref="FleetViewAge"/> serves its pass once more while it is
    /// read again beside it, so that its two reads are never waited for on the way from Ready to a worker; only a
    /// forgotten view (a new worker, a weight set) is read before the pass goes on.
    /// </summary>
    private async Task<FleetView> FleetAsync(FarmDbContext db, DateTime now, CancellationToken cancellationToken)
    {
        if (_fleet is not { } fleet)
        {
            return await ReadFleetAsync(db, now, Volatile.Read(ref _fleetGeneration), cancellationToken);
        }

        if (System.Diagnostics.Stopwatch.GetElapsedTime(fleet.ReadAt) >= FleetViewAge && _fleetRefresh is null or { IsCompleted: true })
        {
            _fleetRefresh = RefreshFleetAsync(now, Volatile.Read(ref _fleetGeneration));
        }

        return fleet;
    }

    private async Task RefreshFleetAsync(DateTime now, int generation)
    {
        try
        {
            await using var db = await contextFactory.CreateDbContextAsync();
            await ReadFleetAsync(db, now, generation, CancellationToken.None);
        }
        catch (Exception e)
        {
            // The old view serves until a read succeeds: each pass after this one tries again.
            logger.LogWarning(e, "Reading the fleet view failed");
        }
    }

    /// <summary>Reads the view and keeps it, unless it was forgotten meanwhile (then it may predate the change).</summary>
    private async Task<FleetView> ReadFleetAsync(FarmDbContext db, DateTime now, int generation, CancellationToken cancellationToken)
    {
        var liveSince = now - options.LeaseDuration;
        var workers = await db.Workers.Where(w => w.LastSeenAt >= liveSince)
            .Select(w => new LiveWorker(w.Pool, w.Slots, w.DeviceMemoryBytes, w.Engines))
            .ToListAsync(cancellationToken);
        var weights = await db.ProjectShares.AsNoTracking().ToDictionaryAsync(s => s.Project, s => s.Weight, StringComparer.Ordinal, cancellationToken);
        var view = new FleetView(System.Diagnostics.Stopwatch.GetTimestamp(), workers, weights);
        if (generation == Volatile.Read(ref _fleetGeneration))
        {
            _fleet = view;
        }

        return view;
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
    /// spend, never a sum of the ledger). Each row carries what its message needs, so that dispatching it is one write.
    /// Only tasks of lanes up to <paramref name="lanes"/> are read (the lanes that have room).
    /// </summary>
    private static async Task<List<Candidate>> ReadyCandidatesAsync(FarmDbContext db, int messages, int lanes, CoordinatorOptions options, DateTime now, CancellationToken cancellationToken)
    {
        var tasks = messages * options.MaxBundle;
        List<DispatchRow> rows;
        if (db.Database.IsNpgsql())
        {
            rows = await db.Database.SqlQuery<DispatchRow>($"""
                WITH runnable AS (
                    SELECT j.id, j.project FROM jobs AS j
                    WHERE j.state IN ('Queued', 'Running') AND NOT j.paused
                      AND NOT EXISTS (SELECT 1 FROM budget_stops AS st WHERE st.job_id = j.id)
                ), counted AS (SELECT count(*) AS jobs FROM runnable)
                SELECT t.id AS "Id", j.project AS "Project", n.jobs AS "RunnableJobs", t.lane AS "Lane", t.priority AS "Priority", t.created_at AS "CreatedAt",
                       t.job_id AS "JobId", t.shot_id AS "ShotId", t.kind AS "Kind", t.first_frame AS "FirstFrame", t.last_frame AS "LastFrame",
                       t.start_keyframe AS "StartKeyframe", t.end_keyframe AS "EndKeyframe", t.copy_to AS "CopyTo", t.attempt_count AS "AttemptCount",
                       t.max_frame_batch AS "MaxFrameBatch", t.min_memory_bytes AS "MinMemoryBytes", t.ready_at AS "ReadyAt", t.not_before AS "NotBefore",
                       s.engine AS "Engine", s.prompt AS "Prompt", s.width AS "Width", s.height AS "Height", s.fps AS "Fps", s.interpolate AS "Interpolate",
                       s.steps AS "Steps", s.guidance AS "Guidance", s.seed AS "Seed", s.frame_count AS "FrameCount", s.keyframe_interval AS "KeyframeInterval",
                       s.folder AS "Folder", s.plate_id AS "PlateId", s.plate_strength AS "PlateStrength", s.plate_strengths AS "PlateStrengths",
                       s.anchor_background AS "AnchorBackground", s.anchor_colour AS "AnchorColour", s.trace_parent AS "TraceParent"
                FROM runnable AS j
                CROSS JOIN counted AS n
                CROSS JOIN LATERAL (
                    SELECT * FROM tasks AS r
                    WHERE r.job_id = j.id AND r.state = 'Ready' AND r.lane <= {lanes} AND (r.not_before IS NULL OR r.not_before <= {now})
                    ORDER BY r.lane, r.priority DESC, r.created_at, r.first_frame
                    LIMIT GREATEST({messages}, {tasks} / n.jobs)) AS t
                JOIN shots AS s ON s.id = t.shot_id
                """).ToListAsync(cancellationToken);
        }
        else
        {
            // Embedded mode serves one studio machine: the plain dispatch order is enough there.
            var entities = await (
                from task in db.Tasks
                join job in db.Jobs on task.JobId equals job.Id
                join shot in db.Shots on task.ShotId equals shot.Id
                where task.State == RenderTaskState.Ready && task.Lane <= lanes && (task.NotBefore == null || task.NotBefore <= now)
                    && (job.State == JobState.Queued || job.State == JobState.Running) && !job.Paused
                    && !db.BudgetStops.Any(s => s.JobId == job.Id)
                orderby task.Lane, task.Priority descending, task.CreatedAt, task.FirstFrame
                select new { Task = task, Shot = shot, job.Project })
                .AsNoTracking()
                .Take(tasks)
                .ToListAsync(cancellationToken);
            rows = [.. entities.Select(e => DispatchRow.From(e.Task, e.Shot, e.Project))];
        }

        return [.. rows.Select(row =>
        {
            var frames = row.LastFrame - row.FirstFrame + 1;
            return new Candidate(
                new ReadyTask(
                    row.Id, row.Project, row.Lane, row.Priority, row.CreatedAt, row.FirstFrame, row.Engine,
                    Math.Max(row.MinMemoryBytes, TaskRequirements.MinimumMemoryBytes(row.Engine, row.Width, row.Height, Math.Min(frames, row.MaxFrameBatch ?? int.MaxValue))),
                    Bundling.Size(row.Engine, Enum.Parse<Domain.Planning.TaskKind>(row.Kind, ignoreCase: true), row.Width, row.Height, row.Steps, frames, options.BundleSeconds, options.MaxBundle)),
                row);
        })];
    }

    /// <summary>
    /// The projects of which a job gave as many candidates as the query let it: it may have more Ready than that.
    /// Embedded mode reads in the plain dispatch order (no row counts <c>RunnableJobs</c>), so nobody is cut short.
    /// </summary>
    private static HashSet<string> CutShort(List<Candidate> candidates, int messages, CoordinatorOptions options) =>
        [.. candidates.Where(c => c.Row.RunnableJobs > 0)
            .GroupBy(c => c.Row.JobId)
            .Where(job => job.Count() >= Math.Max(messages, messages * options.MaxBundle / job.First().Row.RunnableJobs))
            .Select(job => job.First().Row.Project)];

    /// <summary>A Ready task as the scheduler sees it, and the row its message is made from.</summary>
    private sealed record Candidate(ReadyTask Ready, DispatchRow Row);

    /// <summary>
    /// Gives each planned task a new attempt in its pool and groups the attempts into bundles: consecutive in the
    /// plan's order, of one pool and one bundle size. On PostgreSQL it is one statement (the tasks' move to Dispatched
    /// and the attempts' insert, atomic without a transaction around them: commits and round trips are what a task
    /// waits for). A task that is no longer Ready (another dispatcher took it) is skipped; its bundle goes one short.
    /// </summary>
    private async Task<List<(List<Contract.RenderTask> Tasks, string Pool)>> CreateAttemptsAsync(IReadOnlyList<(ReadyTask Task, string Pool)> plan, Dictionary<Guid, DispatchRow> rows, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var proposed = new List<Attempt>(plan.Count);
        var chunks = new List<(Attempt[] Attempts, string Pool)>();
        foreach (var group in plan.GroupBy(p => (p.Pool, Size: p.Task.BundleSize)))
        {
            foreach (var chunk in group.Chunk(group.Key.Size))
            {
                Attempt[] attempts = [.. chunk.Select(p => new Attempt
                {
                    Id = Guid.CreateVersion7(),
                    TaskId = p.Task.Id,
                    Number = rows[p.Task.Id].AttemptCount + 1,
                    State = AttemptState.Queued,
                    Pool = group.Key.Pool,
                    Project = p.Task.Project,
                    Lane = p.Task.Lane,
                    BundleSize = chunk.Length,
                    CreatedAt = now,
                    PublishedAt = now,
                })];
                proposed.AddRange(attempts);
                chunks.Add((attempts, group.Key.Pool));
            }
        }

        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var taken = await TakeReadyAsync(db, proposed, now, cancellationToken);
        var bundles = new List<(List<Contract.RenderTask> Tasks, string Pool)>();
        foreach (var (attempts, pool) in chunks)
        {
            var bundle = new List<Contract.RenderTask>(attempts.Length);
            foreach (var attempt in attempts.Where(a => taken.Contains(a.Id)))
            {
                var row = rows[attempt.TaskId];
                bundle.Add(ToMessage(attempt.Id, row));
                metrics.Dispatched(row.RunnableSince, row.Lane, pool, now);
            }

            if (bundle.Count > 0)
            {
                bundles.Add((bundle, pool));
            }
        }

        return bundles;
    }

    /// <summary>
    /// Moves each proposed attempt's task <c>Ready → Dispatched</c> with that attempt as its current one and inserts
    /// the attempts of the tasks it moved, Queued; returns their ids. A task that is no longer Ready is left alone.
    /// </summary>
    private static async Task<HashSet<Guid>> TakeReadyAsync(FarmDbContext db, List<Attempt> proposed, DateTime now, CancellationToken cancellationToken)
    {
        if (db.Database.IsNpgsql())
        {
            Guid[] ids = [.. proposed.Select(a => a.Id)], taskIds = [.. proposed.Select(a => a.TaskId)];
            int[] bundleSizes = [.. proposed.Select(a => a.BundleSize)];
            string[] pools = [.. proposed.Select(a => a.Pool)];
            string[] projects = [.. proposed.Select(a => a.Project!)];
            var inserted = await db.Database.SqlQuery<Guid>($"""
                WITH taken AS (
                    UPDATE tasks AS t
                    SET state = 'Dispatched', current_attempt_id = v.id, attempt_count = t.attempt_count + 1, updated_at = {now}
                    FROM unnest({ids}, {taskIds}, {pools}, {bundleSizes}, {projects}) AS v(id, task_id, pool, bundle_size, project)
                    WHERE t.id = v.task_id AND t.state = 'Ready'
                    RETURNING v.id, t.id AS task_id, t.attempt_count AS number, v.pool, v.bundle_size, v.project, t.lane)
                INSERT INTO attempts (id, task_id, number, state, pool, created_at, published_at, bundle_size, project, lane)
                SELECT id, task_id, number, 'Queued', pool, {now}, {now}, bundle_size, project, lane FROM taken
                RETURNING id AS "Value"
                """).ToListAsync(cancellationToken);
            return [.. inserted];
        }

        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var taken = new HashSet<Guid>();
        foreach (var attempt in proposed)
        {
            var updated = await db.Tasks
                .Where(t => t.Id == attempt.TaskId && t.State == RenderTaskState.Ready)
                .ExecuteUpdateAsync(
                    set => set.SetProperty(t => t.State, RenderTaskState.Dispatched)
                        .SetProperty(t => t.CurrentAttemptId, attempt.Id)
                        .SetProperty(t => t.AttemptCount, t => t.AttemptCount + 1)
                        .SetProperty(t => t.UpdatedAt, now),
                    cancellationToken);
            if (updated == 1)
            {
                db.Attempts.Add(attempt);
                taken.Add(attempt.Id);
            }
        }

        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return taken;
    }

    /// <summary>
    /// Sends again the attempts published long ago and still unclaimed whose pool's queue has run dry: the message may
    /// have been lost with a broker restart or dropped by a worker whose claim timed out. While the queue still holds
    /// ready messages, an old one is waiting its turn behind long tasks, not lost: sending it again would only add a
    /// copy per attempt every <see cref="CoordinatorOptions.RepublishAfter"/> (a million-task backlog's fifty thousand
    /// queued attempts, one update and one send each, every 30 s). Run by the maintenance schedule, not on every pass.
    /// </summary>
    public async Task<int> RepublishUnclaimedAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var staleBefore = now - options.RepublishAfter;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var stalePools = await db.Attempts.Where(a => a.State == AttemptState.Queued && a.PublishedAt < staleBefore).Select(a => a.Pool).Distinct().ToListAsync(cancellationToken);
        if (stalePools.Count == 0)
        {
            return 0;
        }

        var ready = await queueDepths.ReadyMessagesAsync(stalePools, cancellationToken);
        string[] drained = [.. stalePools.Where(pool => ready is null || ready[pool] == 0)];
        if (drained.Length == 0)
        {
            return 0;
        }

        var stale = await (
            from attempt in db.Attempts
            join task in db.Tasks on attempt.TaskId equals task.Id
            join shot in db.Shots on task.ShotId equals shot.Id
            join job in db.Jobs on task.JobId equals job.Id
            where attempt.State == AttemptState.Queued && attempt.PublishedAt < staleBefore && task.CurrentAttemptId == attempt.Id && drained.Contains(attempt.Pool)
            select new { AttemptId = attempt.Id, attempt.Pool, Task = task, Shot = shot, job.Project })
            .AsNoTracking()
            .ToListAsync(cancellationToken);
        foreach (var item in stale)
        {
            logger.LogInformation("Attempt {AttemptId} unclaimed since {Since}; publishing it again", item.AttemptId, staleBefore);
            // Marked first: a send that fails is retried by a later sweep, and whoever sees the copy sees the mark. It
            // goes alone, and counts so in its pool's queue.
            await db.Attempts.Where(a => a.Id == item.AttemptId && a.State == AttemptState.Queued)
                .ExecuteUpdateAsync(set => set.SetProperty(a => a.PublishedAt, now).SetProperty(a => a.BundleSize, 1), cancellationToken);
            await SendAsync([ToMessage(item.AttemptId, DispatchRow.From(item.Task, item.Shot, item.Project))], item.Pool, cancellationToken);
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

    private static Contract.RenderTask ToMessage(Guid attemptId, DispatchRow row) => new()
    {
        AttemptId = attemptId,
        TaskId = row.Id,
        JobId = row.JobId,
        ShotId = row.ShotId,
        Kind = row.Kind,
        Engine = row.Engine,
        Prompt = row.Prompt,
        Width = row.Width,
        Height = row.Height,
        Fps = row.Fps,
        Interpolate = row.Interpolate,
        Steps = row.Steps,
        Guidance = row.Guidance,
        Seed = row.Seed,
        TotalFrames = row.FrameCount,
        Frames = Enumerable.Range(row.FirstFrame, row.LastFrame - row.FirstFrame + 1).ToArray(),
        StartKeyframe = row.StartKeyframe,
        EndKeyframe = row.EndKeyframe,
        ShotFolder = row.Folder,
        CopyTo = row.CopyTo?.Split('\n') ?? [],
        Keyframes = row.Kind == "assemble" ? [.. Domain.Planning.ShotPlanner.Keyframes(row.FrameCount, row.KeyframeInterval)] : [],
        MaxFrameBatch = row.MaxFrameBatch,
        PlateFolder = row.PlateId is { } plate ? ShotStorage.PlateFolder(plate) : null,
        PlateStrength = row.PlateStrengths is null || row.Kind != "keyframe"
            ? row.PlateStrength
            : PlateSpec.StrengthAt(row.PlateStrength ?? 1, PlateSpec.Parse(row.PlateStrengths), Domain.Planning.ShotPlanner.KeyframeIndex(row.FirstFrame, row.KeyframeInterval)),
        AnchorBackground = row.AnchorBackground,
        AnchorColour = row.AnchorColour,
        JobTraceParent = row.TraceParent,
    };
}
