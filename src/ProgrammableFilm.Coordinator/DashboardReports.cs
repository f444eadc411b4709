using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Coordinator;

/// <summary>One project as the dashboard lists it: its jobs and what it spent, in total and over the last hour.</summary>
public sealed record ProjectSummary(string Project, int Jobs, int ActiveJobs, DateTime LastJobAt, decimal SpentUsd, decimal BurnUsdPerHour, double DeviceSeconds, double EnergyKwh, double Co2eGrams);

/// <summary>The ledger rows of one time bucket, summed; <see cref="At"/> is the bucket's start (UTC).</summary>
public sealed record SpendPoint(DateTime At, decimal CostUsd, double DeviceSeconds, double EnergyKwh, int Attempts);

/// <summary>A project's spend per time bucket in [<see cref="From"/>, <see cref="To"/>); empty buckets are left out.</summary>
public sealed record SpendSeries(string Project, string Bucket, DateTime From, DateTime To, decimal TotalUsd, IReadOnlyList<SpendPoint> Points);

/// <summary>One worker pool: live and lost workers, slots in use, and tasks waiting for it per lane.</summary>
public sealed record PoolSummary(string Pool, int LiveWorkers, int LostWorkers, int Slots, int BusySlots, double Utilization, int QueuedPreview, int QueuedBatch);

public sealed record FleetSummary(IReadOnlyList<PoolSummary> Pools, IReadOnlyList<WorkerStatus> Workers);

/// <summary>One attempt on a shot's timeline, with what the ledger billed for it (null while it has not ended).</summary>
public sealed record AttemptSpan(Guid Id, string Task, string Kind, int Number, string State, string? Worker, DateTime CreatedAt, DateTime? ClaimedAt, DateTime? FinishedAt, double DeviceSeconds, decimal? CostUsd, string? FailureClass, double? EnergyKwh = null, bool? EnergyEstimated = null, double? Co2eGrams = null);

/// <summary>
/// A shot's rendered keyframes (frame numbers, at most one per hundredth of the shot) and the attempts of its first
/// tasks in key order, oldest first; <see cref="Truncated"/> when more attempts exist.
/// </summary>
public sealed record ShotTimeline(Guid ShotId, Guid JobId, IReadOnlyList<int> Keyframes, IReadOnlyList<AttemptSpan> Attempts, bool Truncated);

/// <summary>What the dashboard shows of a job while it renders; pushed whenever one of these values changes.</summary>
public sealed record JobProgress(Guid Id, string Project, string? Name, string State, bool Paused, double Progress, int TasksTotal, int TasksSucceeded, decimal CostUsd, string? Error);

/// <summary>A spend-series bucket width.</summary>
public enum SpendBucket
{
    Minute,
    Hour,
    Day,
}

/// <summary>
/// The dashboard's read side. Everything is aggregated in the database on PostgreSQL (a job may hold a million tasks,
/// the ledger ten million rows); on SQLite (embedded, small farms) decimal sums are taken here because SQLite cannot
/// sum decimals.
/// </summary>
public sealed class DashboardReports(IDbContextFactory<FarmDbContext> contextFactory, JobReports jobs, CoordinatorOptions options, TimeProvider time)
{
    /// <summary>The most buckets one series may hold: a chart has no use for more points than pixels.</summary>
    public const int MaxBuckets = 2000;

    /// <summary>At most this many attempts are listed per shot timeline.</summary>
    public const int MaxTimelineAttempts = 1000;

    /// <summary>At most this many keyframes are listed per shot timeline.</summary>
    public const int MaxTimelineKeyframes = 100;

    /// <summary>
    /// The fleet view counts its queues on every request while neither holds more than this (a few milliseconds of
    /// index reads at most); longer queues are counted periodically.
    /// </summary>
    private const int ExactQueueDepth = 1000;

    private const double JoulesPerKilowattHour = 3.6e6;

    /// <summary>How many succeeded jobs' task counts an API process keeps (a few megabytes).</summary>
    private const int SucceededCountsKept = 100_000;

    /// <summary>How many succeeded shots' keyframe lists an API process keeps (at most 100 frame numbers each).</summary>
    private const int KeyframeListsKept = 10_000;

    private static readonly TimeSpan LostWorkerWindow = TimeSpan.FromHours(1);
    private static readonly JobState[] ActiveStates = [JobState.Queued, JobState.Running, JobState.Waiting];
    private readonly ConcurrentDictionary<Guid, SucceededCounts> _succeeded = new();
    private readonly ConcurrentDictionary<Guid, ShotKeyframes> _keyframes = new();
    private WaitingCount? _waiting;
    private int _recountingWaiting;

    public static TimeSpan Width(SpendBucket bucket) => bucket switch
    {
        SpendBucket.Minute => TimeSpan.FromMinutes(1),
        SpendBucket.Hour => TimeSpan.FromHours(1),
        _ => TimeSpan.FromDays(1),
    };

    /// <summary>The window a series covers when the caller names none: enough buckets for a readable chart.</summary>
    public static TimeSpan DefaultWindow(SpendBucket bucket) => bucket switch
    {
        SpendBucket.Minute => TimeSpan.FromHours(2),
        SpendBucket.Hour => TimeSpan.FromDays(7),
        _ => TimeSpan.FromDays(90),
    };

    /// <summary>
    /// Every project that has a job, most recently active first. The burn rate is the spend of the last 60 UTC minutes,
    /// the current one included (59 to 60 minutes of bills): on PostgreSQL it comes from the per-minute roll-up.
    /// </summary>
    public async Task<IReadOnlyList<ProjectSummary>> ProjectsAsync(CancellationToken cancellationToken)
    {
        var since = FloorMinute(time.GetUtcNow().UtcDateTime).AddMinutes(-59);
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        List<ProjectRow> rows;
        if (db.Database.IsNpgsql())
        {
            // One round trip: the jobs grouped per project, the trigger-kept totals (a primary-key probe per project)
            // and at most 60 minute rows per project for the burn rate (a range of the roll-up's primary key).
            var active = ActiveStates.Select(s => s.ToString()).ToArray();
            rows = await db.Database.SqlQuery<ProjectRow>($"""
                SELECT j.project AS "Project", j.jobs AS "Jobs", j.active AS "ActiveJobs", j.last AS "LastJobAt",
                       coalesce(s.cost_micros, 0) AS "SpentMicros", coalesce(b.micros, 0) AS "BurnMicros",
                       coalesce(s.device_seconds, 0) AS "DeviceSeconds", coalesce(s.energy_joules, 0) AS "EnergyJoules", coalesce(s.co2e_grams, 0) AS "Co2eGrams"
                FROM (SELECT project, count(*)::int AS jobs, (count(*) FILTER (WHERE state = ANY ({active})))::int AS active, max(created_at) AS last
                      FROM jobs GROUP BY project) AS j
                LEFT JOIN project_spend AS s ON s.project = j.project
                LEFT JOIN LATERAL (SELECT sum(m.cost_micros)::bigint AS micros FROM project_spend_minutes AS m WHERE m.project = j.project AND m.minute >= {since}) AS b ON true
                """).ToListAsync(cancellationToken);
        }
        else
        {
            // SQLite (embedded, small farms) keeps no minute roll-up: its last hour is a short read of the ledger.
            var jobCounts = await db.Jobs.GroupBy(j => j.Project)
                .Select(g => new { Project = g.Key, Jobs = g.Count(), Active = g.Count(j => ActiveStates.Contains(j.State)), Last = g.Max(j => j.CreatedAt) })
                .ToListAsync(cancellationToken);
            var totals = await db.ProjectSpend.AsNoTracking().ToDictionaryAsync(p => p.Project, StringComparer.Ordinal, cancellationToken);
            var lastHour = (await db.Usage.Where(u => u.RecordedAt >= since).Select(u => new { u.Project, u.Cost }).ToListAsync(cancellationToken))
                .GroupBy(u => u.Project)
                .ToDictionary(g => g.Key, g => g.Sum(u => Domain.Money.MoneyMath.ToMicros(u.Cost)), StringComparer.Ordinal);
            rows = [.. jobCounts.Select(j =>
            {
                var spent = totals.GetValueOrDefault(j.Project);
                return new ProjectRow
                {
                    Project = j.Project,
                    Jobs = j.Jobs,
                    ActiveJobs = j.Active,
                    LastJobAt = j.Last,
                    SpentMicros = spent?.CostMicros ?? 0,
                    BurnMicros = lastHour.GetValueOrDefault(j.Project),
                    DeviceSeconds = spent?.DeviceSeconds ?? 0,
                    EnergyJoules = spent?.EnergyJoules ?? 0,
                    Co2eGrams = spent?.Co2eGrams ?? 0,
                };
            })];
        }

        return rows.Select(r => new ProjectSummary(
                r.Project,
                r.Jobs,
                r.ActiveJobs,
                DateTime.SpecifyKind(r.LastJobAt, DateTimeKind.Utc),
                Domain.Money.MoneyMath.FromMicros(r.SpentMicros),
                Domain.Money.MoneyMath.FromMicros(r.BurnMicros),
                r.DeviceSeconds,
                r.EnergyJoules / JoulesPerKilowattHour,
                r.Co2eGrams))
            .OrderByDescending(p => p.LastJobAt).ThenBy(p => p.Project, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// The project's ledger summed per bucket (aligned to the Unix epoch, UTC) over the whole UTC minutes that
    /// [from, to) touches: the series says the minute-aligned range it covers. On PostgreSQL a bucket sums the
    /// per-minute roll-up (an hour is 60 rows however many tasks were billed in it).
    /// </summary>
    public async Task<SpendSeries> SpendAsync(string project, SpendBucket bucket, DateTime from, DateTime to, CancellationToken cancellationToken)
    {
        var width = Width(bucket);
        var start = FloorMinute(from);
        var end = FloorMinute(to) == to ? to : FloorMinute(to).AddMinutes(1);
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        List<SpendPoint> points;
        if (db.Database.IsNpgsql())
        {
            // Minutes are epoch-aligned and every bucket width is a whole number of minutes, so binning a minute's
            // start puts all its bills in the bucket their own times fall in.
            var rows = await db.Database.SqlQuery<SpendRow>($"""
                SELECT date_bin({width}, minute, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS "At", sum(cost_micros)::bigint AS "CostMicros",
                       sum(device_seconds) AS "DeviceSeconds", sum(energy_joules) / 3600000.0 AS "EnergyKwh", sum(attempts)::int AS "Attempts"
                FROM project_spend_minutes
                WHERE project = {project} AND minute >= {start} AND minute < {end}
                GROUP BY 1 ORDER BY 1
                """).ToListAsync(cancellationToken);
            points = rows.Select(r => new SpendPoint(DateTime.SpecifyKind(r.At, DateTimeKind.Utc), Domain.Money.MoneyMath.FromMicros(r.CostMicros), r.DeviceSeconds, r.EnergyKwh, r.Attempts)).ToList();
        }
        else
        {
            var rows = await db.Usage.Where(u => u.Project == project && u.RecordedAt >= start && u.RecordedAt < end)
                .Select(u => new { u.RecordedAt, u.Cost, u.DeviceSeconds, u.EnergyJoules })
                .ToListAsync(cancellationToken);
            points = rows.GroupBy(r => new DateTime(r.RecordedAt.Ticks - (r.RecordedAt.Ticks % width.Ticks), DateTimeKind.Utc))
                .OrderBy(g => g.Key)
                .Select(g => new SpendPoint(g.Key, g.Sum(r => r.Cost), g.Sum(r => r.DeviceSeconds), g.Sum(r => r.EnergyJoules) / JoulesPerKilowattHour, g.Count()))
                .ToList();
        }

        return new SpendSeries(project, bucket.ToString().ToLowerInvariant(), start, end, points.Sum(p => p.CostUsd), points);
    }

    private static DateTime FloorMinute(DateTime at) => new(at.Ticks - (at.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Utc);

    /// <summary>
    /// How old a fleet view may be when it is served again. Workers report every few seconds (3 s by default) and are
    /// lost after a lease, so a view of the last second shows what a fresh one would; fifty readers of a 200-worker
    /// fleet otherwise each read and serialised every worker (118 ms p95 at 760 requests/s on two cores).
    /// </summary>
    public static readonly TimeSpan FleetMaxAge = TimeSpan.FromSeconds(1);

    private FleetSnapshot? _fleet;

    private sealed record FleetSnapshot(long At, FleetSummary Summary);

    /// <summary>
    /// Workers, pools, slots in use and queue depth per pool and lane (Ready tasks count for the coordinator's pool):
    /// the workers and the claimed attempts are read once for both the pools and the worker list. A view younger than
    /// <see cref="FleetMaxAge"/> is served again.
    /// </summary>
    public async Task<FleetSummary> FleetAsync(CancellationToken cancellationToken)
    {
        if (_fleet is { } recent && time.GetElapsedTime(recent.At) < FleetMaxAge)
        {
            return recent.Summary;
        }

        var started = time.GetTimestamp();
        var summary = await ReadFleetSummaryAsync(cancellationToken);
        _fleet = new FleetSnapshot(started, summary);
        return summary;
    }

    private async Task<FleetSummary> ReadFleetSummaryAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var waiting = await WaitingAsync(db, now, cancellationToken);
        var fleet = await ReadFleetAsync(db, cancellationToken);
        var running = fleet.Claimed.Where(c => c.WorkerId is not null).GroupBy(c => c.WorkerId!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Sum(c => c.Count), StringComparer.Ordinal);
        return new FleetSummary(Pools(options, now, fleet, waiting), JobReports.WorkerStatuses(fleet.Workers, running, now - options.LeaseDuration));
    }

    /// <summary>
    /// Every known pool, counting every Ready task and queued attempt: for /metrics, whose snapshot is refreshed in the
    /// background at most every few seconds, so a count that grows with the queue costs no request its latency.
    /// </summary>
    public static async Task<IReadOnlyList<PoolSummary>> PoolsAsync(FarmDbContext db, CoordinatorOptions options, DateTime now, CancellationToken cancellationToken)
    {
        var waiting = await CountWaitingAsync(db, options, cancellationToken);
        return Pools(options, now, await ReadFleetAsync(db, cancellationToken), waiting);
    }

    /// <summary>
    /// The fleet view's queue depths. A queue last counted as long within <see cref="CoordinatorOptions.StatusRollupMaxAge"/>
    /// is not read at all (like a big job's status, it may be that old). Otherwise up to <see cref="ExactQueueDepth"/>
    /// Ready tasks and as many queued attempts are counted (bounded reads of the partial indexes, so a small farm's
    /// figures are exact and current), and a longer queue is counted by one request while the others read the
    /// previous count: 50 dashboards polling a queue of 700,000 tasks would otherwise each scan it.
    /// </summary>
    private async Task<IReadOnlyList<QueueDepth>> WaitingAsync(FarmDbContext db, DateTime now, CancellationToken cancellationToken)
    {
        var counted = _waiting;
        if (counted is not null && counted.At >= now - options.StatusRollupMaxAge)
        {
            return counted.Depths;
        }

        if (await db.Tasks.Where(t => t.State == RenderTaskState.Ready).Select(t => t.Lane).Take(ExactQueueDepth + 1).CountAsync(cancellationToken) <= ExactQueueDepth
            && await db.Attempts.Where(a => a.State == AttemptState.Queued).Select(a => a.State).Take(ExactQueueDepth + 1).CountAsync(cancellationToken) <= ExactQueueDepth)
        {
            return await CountWaitingAsync(db, options, cancellationToken);
        }

        var recounting = Interlocked.CompareExchange(ref _recountingWaiting, 1, 0) == 0;
        if (!recounting && counted is not null)
        {
            return counted.Depths;
        }

        try
        {
            var depths = await CountWaitingAsync(db, options, cancellationToken);
            _waiting = new WaitingCount(now, depths);
            return depths;
        }
        finally
        {
            if (recounting)
            {
                Volatile.Write(ref _recountingWaiting, 0);
            }
        }
    }

    /// <summary>
    /// Ready tasks per lane, for the coordinator's own pool (they have no pool yet; its dispatcher sends them there),
    /// and queued attempts per pool and lane (the lane is the task's).
    /// </summary>
    private static async Task<IReadOnlyList<QueueDepth>> CountWaitingAsync(FarmDbContext db, CoordinatorOptions options, CancellationToken cancellationToken)
    {
        var ready = await db.Tasks.Where(t => t.State == RenderTaskState.Ready).GroupBy(t => t.Lane)
            .Select(g => new { Lane = g.Key, Count = g.Count() })
            .ToListAsync(cancellationToken);
        var queued = await (
            from attempt in db.Attempts
            join task in db.Tasks on attempt.TaskId equals task.Id
            where attempt.State == AttemptState.Queued
            group attempt by new { attempt.Pool, task.Lane } into g
            select new QueueDepth(g.Key.Pool, g.Key.Lane, g.Count()))
            .ToListAsync(cancellationToken);
        return [.. ready.Select(r => new QueueDepth(options.Pool, r.Lane, r.Count)), .. queued];
    }

    /// <summary>Every worker (a fleet holds hundreds, not millions) and the claimed attempts per pool and worker (the partial index of live attempts).</summary>
    private static async Task<FleetRows> ReadFleetAsync(FarmDbContext db, CancellationToken cancellationToken)
    {
        var workers = await db.Workers.AsNoTracking().OrderBy(w => w.Id).ToListAsync(cancellationToken);
        var claimed = await db.Attempts.Where(a => a.State == AttemptState.Claimed).GroupBy(a => new { a.Pool, a.WorkerId })
            .Select(g => new ClaimedCount(g.Key.Pool, g.Key.WorkerId, g.Count()))
            .ToListAsync(cancellationToken);
        return new FleetRows(workers, claimed);
    }

    /// <summary>
    /// Every known pool, at zero when idle (so that an empty queue is a figure of 0 rather than no figure): its live
    /// and lost workers (lost: not seen for a lease but within the last hour), live slots, slots in use, and queue
    /// depth per lane.
    /// </summary>
    private static IReadOnlyList<PoolSummary> Pools(CoordinatorOptions options, DateTime now, FleetRows fleet, IReadOnlyList<QueueDepth> waiting)
    {
        var liveSince = now - options.LeaseDuration;
        var lostSince = now - LostWorkerWindow;
        var recent = fleet.Workers.Where(w => w.LastSeenAt >= lostSince).ToList();
        var pools = recent.Select(w => w.Pool).Concat(fleet.Claimed.Select(c => c.Pool)).Concat(waiting.Select(w => w.Pool)).Append(options.Pool)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        return [.. pools.Select(pool =>
        {
            var live = recent.Where(w => w.Pool == pool && w.LastSeenAt >= liveSince).ToList();
            var slots = live.Sum(w => w.Slots);
            var inUse = fleet.Claimed.Where(c => c.Pool == pool).Sum(c => c.Count);
            return new PoolSummary(
                pool,
                live.Count,
                recent.Count(w => w.Pool == pool && w.LastSeenAt < liveSince),
                slots,
                inUse,
                slots > 0 ? Math.Min(1, (double)inUse / slots) : 0,
                waiting.Where(w => w.Pool == pool && w.Lane == 0).Sum(w => w.Count),
                waiting.Where(w => w.Pool == pool && w.Lane != 0).Sum(w => w.Count));
        })];
    }

    /// <summary>
    /// A shot's keyframes and attempts; null for an unknown shot. A request reads O(<paramref name="limit"/>) attempts
    /// whatever the shot's size: the attempts of the shot's first tasks in key order (the unique index on shot and key,
    /// then each task's attempts by their index), listed oldest first. Keyframes are thinned to at most
    /// <see cref="MaxTimelineKeyframes"/>, evenly spaced over the shot: the dashboard shows a strip of thumbnails, not
    /// ten thousand frame numbers.
    /// </summary>
    public async Task<ShotTimeline?> TimelineAsync(Guid shotId, int limit, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var shot = await db.Shots.AsNoTracking().Where(s => s.Id == shotId).Select(s => new { s.Id, s.JobId, s.FrameCount, s.State, s.FinishedAt }).SingleOrDefaultAsync(cancellationToken);
        if (shot is null)
        {
            return null;
        }

        // A succeeded shot's keyframes never change (only failed or cancelled shots are retried): they are read once per
        // API process, keyed by the shot's finishing time. A rendering shot's are read on every request, so the page's
        // last reload after the last push shows them all.
        IReadOnlyList<int> keyframes;
        if (shot.State == ShotState.Succeeded && _keyframes.TryGetValue(shotId, out var kept) && kept.FinishedAt == shot.FinishedAt)
        {
            keyframes = kept.Frames;
        }
        else
        {
            keyframes = await KeyframesAsync(db, shotId, shot.FrameCount, cancellationToken);
            if (shot.State == ShotState.Succeeded)
            {
                Remember(_keyframes, shotId, new ShotKeyframes(shot.FinishedAt, keyframes), KeyframeListsKept);
            }
        }

        // The page of attempts and what the ledger billed them, in one round trip: the bills are joined to the page
        // after its limit, a probe of the ledger's unique attempt index each.
        var firstAttempts = (
                from task in db.Tasks
                join attempt in db.Attempts on task.Id equals attempt.TaskId
                where task.ShotId == shotId
                orderby task.Key, attempt.Number
                select new { attempt.Id, task.Key, task.Kind, attempt.Number, attempt.State, attempt.WorkerId, attempt.CreatedAt, attempt.ClaimedAt, attempt.FinishedAt, attempt.DeviceSeconds, attempt.FailureClass })
            .Take(limit + 1);
        var attempts = await (
                from a in firstAttempts
                join usage in db.Usage on a.Id equals usage.AttemptId into bills
                from bill in bills.DefaultIfEmpty()
                orderby a.Key, a.Number
                select new
                {
                    a.Id, a.Key, a.Kind, a.Number, a.State, a.WorkerId, a.CreatedAt, a.ClaimedAt, a.FinishedAt, a.DeviceSeconds, a.FailureClass,
                    Billed = bill != null, Cost = (decimal?)bill!.Cost, BilledSeconds = (double?)bill.DeviceSeconds, Joules = (double?)bill.EnergyJoules,
                    Estimated = (bool?)bill.EnergyEstimated, bill.Co2eGrams,
                })
            .AsNoTracking()
            .ToListAsync(cancellationToken);
        var spans = attempts.Take(limit).OrderBy(a => a.CreatedAt).ThenBy(a => a.Id)
            .Select(a => new AttemptSpan(a.Id, a.Key, a.Kind, a.Number, a.State.ToString(), a.WorkerId, a.CreatedAt, a.ClaimedAt, a.FinishedAt, a.BilledSeconds ?? a.DeviceSeconds, a.Cost, a.FailureClass, a.Joules / JoulesPerKilowattHour, a.Estimated, a.Billed ? a.Co2eGrams : null))
            .ToList();
        return new ShotTimeline(shot.Id, shot.JobId, keyframes, spans, attempts.Count > limit);
    }

    /// <summary>
    /// The first rendered keyframe of each band of a hundredth of the shot's frames (every keyframe of a shot of up to
    /// <see cref="MaxTimelineKeyframes"/> frames). On PostgreSQL each band is one probe of the unique index on shot
    /// and key, whose keyframe keys sort as their frames, so a finished 10,000-frame shot reads 100 rows rather than
    /// 10,000; SQLite (embedded, small shots) groups the shot's keyframes.
    /// </summary>
    private static async Task<List<int>> KeyframesAsync(FarmDbContext db, Guid shotId, int frameCount, CancellationToken cancellationToken)
    {
        var band = Math.Max(1, (frameCount + MaxTimelineKeyframes - 1) / MaxTimelineKeyframes);
        const int FramesWhoseKeysSortAsFrames = 100_000;
        if (db.Database.IsNpgsql() && frameCount < FramesWhoseKeysSortAsFrames)
        {
            var starts = Enumerable.Range(0, (frameCount + band - 1) / band).Select(b => b * band).ToList();
            var from = starts.Select(Domain.Planning.ShotPlanner.KeyframeKey).ToArray();
            var until = starts.Select(f => Domain.Planning.ShotPlanner.KeyframeKey(Math.Min(f + band, frameCount))).ToArray();
            return await db.Database.SqlQuery<int>($"""
                SELECT k.first_frame AS "Value"
                FROM unnest({from}::text[], {until}::text[]) AS b(from_key, until_key)
                CROSS JOIN LATERAL (
                    SELECT t.first_frame FROM tasks t
                    WHERE t.shot_id = {shotId} AND t.key >= b.from_key AND t.key < b.until_key AND t.kind = 'keyframe' AND t.state = 'Succeeded'
                    ORDER BY t.key LIMIT 1) AS k
                ORDER BY 1
                """).ToListAsync(cancellationToken);
        }

        return await db.Tasks.Where(t => t.ShotId == shotId && t.Kind == "keyframe" && t.State == RenderTaskState.Succeeded)
            .GroupBy(t => t.FirstFrame / band)
            .Select(g => g.Min(t => t.FirstFrame))
            .OrderBy(f => f)
            .Take(MaxTimelineKeyframes)
            .ToListAsync(cancellationToken);
    }

    /// <summary>
    /// Progress and cost of the jobs of <paramref name="projects"/> that are unfinished or finished since
    /// <paramref name="finishedSince"/>: the live view's change detection, a few grouped queries whatever the job sizes.
    /// </summary>
    public async Task<IReadOnlyList<JobProgress>> LiveJobsAsync(IReadOnlyCollection<string> projects, DateTime finishedSince, CancellationToken cancellationToken)
    {
        if (projects.Count == 0)
        {
            return [];
        }

        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await ProgressAsync(db, db.Jobs.Where(j => projects.Contains(j.Project) && (ActiveStates.Contains(j.State) || j.FinishedAt >= finishedSince)), cancellationToken);
    }

    /// <summary>Progress and cost of a project's newest <paramref name="limit"/> jobs, newest first.</summary>
    public async Task<IReadOnlyList<JobProgress>> ProjectJobsAsync(string project, int limit, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await ProgressAsync(db, db.Jobs.Where(j => j.Project == project).OrderByDescending(j => j.CreatedAt).ThenByDescending(j => j.Id).Take(limit), cancellationToken);
    }

    /// <summary>
    /// Counts and cost as the job status shows them: big jobs from their task-count roll-up, cost from the ledger's
    /// roll-up, so a request reads a few rows per job and shot however many tasks and ledger rows the jobs hold. A
    /// succeeded job's counts never change (only a failed or cancelled job is retried), so they are counted once per
    /// API process and kept, keyed by the job and its finishing time; most of a project's listed jobs are finished,
    /// and counting their tasks was most of the list's reads. Cost is always read: a job's last bills may land after it.
    /// </summary>
    private async Task<IReadOnlyList<JobProgress>> ProgressAsync(FarmDbContext db, IQueryable<Job> jobQuery, CancellationToken cancellationToken)
    {
        var rows = await jobQuery.AsNoTracking().Select(j => new { j.Id, j.Project, j.Name, j.State, j.Paused, j.Error, j.TaskCount, j.FinishedAt }).ToListAsync(cancellationToken);
        if (rows.Count == 0)
        {
            return [];
        }

        var known = new Dictionary<Guid, SucceededCounts>();
        foreach (var job in rows.Where(j => j.State == JobState.Succeeded))
        {
            if (_succeeded.TryGetValue(job.Id, out var cached) && cached.FinishedAt == job.FinishedAt)
            {
                known[job.Id] = cached;
            }
        }

        var counts = await jobs.TaskCountsAsync(db, rows.Where(j => !known.ContainsKey(j.Id)).Select(j => (j.Id, j.TaskCount)).ToList(), cancellationToken);
        var tasks = counts.Groups.ToLookup(t => t.JobId);
        var costs = await JobReports.CostPerJobAsync(db, rows.Select(j => j.Id).ToList(), cancellationToken);
        return rows.Select(j =>
        {
            if (!known.TryGetValue(j.Id, out var settled))
            {
                var own = tasks[j.Id].ToList();
                settled = new SucceededCounts(j.FinishedAt, j.State == JobState.Succeeded ? 1 : JobReports.ProgressOf(own), own.Sum(t => t.Count), own.Where(t => t.State == RenderTaskState.Succeeded).Sum(t => t.Count));
                if (j.State == JobState.Succeeded)
                {
                    Remember(_succeeded, j.Id, settled, SucceededCountsKept);
                }
            }

            return new JobProgress(j.Id, j.Project, j.Name, j.State.ToString(), j.Paused, settled.Progress, settled.Total, settled.Succeeded, costs.GetValueOrDefault(j.Id), j.Error);
        }).ToList();
    }

    /// <summary>Bounded by forgetting everything at <paramref name="capacity"/> entries: the next reads read again.</summary>
    private static void Remember<T>(ConcurrentDictionary<Guid, T> kept, Guid id, T value, int capacity)
    {
        if (kept.Count >= capacity)
        {
            kept.Clear();
        }

        kept[id] = value;
    }

    /// <summary>The newest ledger row id: the live view pushes spend only when it moves.</summary>
    public async Task<long> LastLedgerIdAsync(CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await db.Usage.MaxAsync(u => (long?)u.Id, cancellationToken) ?? 0;
    }

    /// <summary>The projects with ledger rows after <paramref name="afterId"/>.</summary>
    public async Task<IReadOnlyList<string>> ProjectsBilledAfterAsync(long afterId, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await db.Usage.Where(u => u.Id > afterId).Select(u => u.Project).Distinct().ToListAsync(cancellationToken);
    }

    /// <summary>The newest budget crossing's id (0 when there is none): where the live updates start reading alerts.</summary>
    public async Task<long> LastBudgetAlertIdAsync(CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await db.BudgetAlerts.MaxAsync(a => (long?)a.Id, cancellationToken) ?? 0;
    }

    /// <summary>The budget crossings after <paramref name="afterId"/>, oldest first, at most <paramref name="limit"/>.</summary>
    public async Task<IReadOnlyList<Money.BudgetAlert>> BudgetAlertsAfterAsync(long afterId, int limit, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var rows = await db.BudgetAlerts.AsNoTracking().Where(a => a.Id > afterId).OrderBy(a => a.Id).Take(limit).ToListAsync(cancellationToken);
        return [.. rows.Select(Money.Budgets.ToAlert)];
    }

    private sealed record QueueDepth(string Pool, int Lane, int Count);

    private sealed record WaitingCount(DateTime At, IReadOnlyList<QueueDepth> Depths);

    private sealed record SucceededCounts(DateTime? FinishedAt, double Progress, int Total, int Succeeded);

    private sealed record ShotKeyframes(DateTime? FinishedAt, IReadOnlyList<int> Frames);

    private sealed record ClaimedCount(string Pool, string? WorkerId, int Count);

    private sealed record FleetRows(IReadOnlyList<Worker> Workers, IReadOnlyList<ClaimedCount> Claimed);

    private sealed class SpendRow
    {
        public DateTime At { get; init; }

        public long CostMicros { get; init; }

        public double DeviceSeconds { get; init; }

        public double EnergyKwh { get; init; }

        public int Attempts { get; init; }
    }

    private sealed class ProjectRow
    {
        public required string Project { get; init; }

        public int Jobs { get; init; }

        public int ActiveJobs { get; init; }

        public DateTime LastJobAt { get; init; }

        public long SpentMicros { get; init; }

        public long BurnMicros { get; init; }

        public double DeviceSeconds { get; init; }

        public double EnergyJoules { get; init; }

        public double Co2eGrams { get; init; }
    }
}
