using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Scheduling;
using Entities = ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Coordinator;

/// <summary>The outcome of a claim.</summary>
public sealed record ClaimDecision(bool Granted, string Reason);

/// <summary>
/// Applies what workers report. Every change is conditional on the attempt still being the task's current one
/// (the attempt id is the fencing token), so a duplicate, late or superseded message changes nothing; usage is
/// recorded once per attempt (the ledger is unique on the attempt id), whether or not the attempt still counts.
/// </summary>
public sealed class TaskEvents(
    IDbContextFactory<FarmDbContext> contextFactory,
    CoordinatorOptions options,
    UsageLedger ledger,
    ShotFinisher shotFinisher,
    DispatchSignal dispatchSignal,
    Dispatcher dispatcher,
    TimeProvider time,
    ILogger<TaskEvents> logger)
{
    private const int MaxLogLineLength = 4000;

    // Workers whose row this coordinator has seen committed; rows are never deleted, so a claim skips reading them.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _registeredWorkers = new(StringComparer.Ordinal);

    /// <summary>
    /// Decides a batch of claims in one transaction: claims are the farm's hottest path, and a round trip per claim
    /// per step was what limited it. The decisions come back in the order of <paramref name="claims"/>. Of several
    /// claims of one attempt (a redelivered message, a duplicated request), in this batch or a concurrent one, only
    /// one worker wins; the same worker asking again is granted again (it runs an attempt at most once however often
    /// it is granted).
    /// </summary>
    public async Task<ClaimDecision[]> ClaimAsync(IReadOnlyList<ClaimAttempt> claims, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var attemptIds = claims.Select(c => c.AttemptId).Distinct().ToList();
        var workerIds = claims.Select(c => c.WorkerId).Distinct().ToList();
        var contexts = await (
            from a in db.Attempts
            join t in db.Tasks on a.TaskId equals t.Id
            join job in db.Jobs on t.JobId equals job.Id
            where attemptIds.Contains(a.Id)
            select new
            {
                Attempt = a,
                Task = t,
                JobState = job.State,
                job.Paused,
                job.Project,
                StoppedBy = Money.Budgets.StopsInPrecedence(db).Where(s => s.JobId == job.Id).Select(s => s.Budget).FirstOrDefault(),
                HasBlocks = db.JobWorkerFailures.Any(f => f.JobId == job.Id && f.BlockedAt != null),
            })
            .AsNoTracking()
            .ToDictionaryAsync(c => c.Attempt.Id, cancellationToken);

        // The claim's round trips are waited for on the way from Ready to a working device: the blocklist is read only
        // for jobs that have one, and the workers' rows only for workers this coordinator has not yet seen in the table
        // (worker rows are never deleted).
        var jobIds = contexts.Values.Where(c => c.HasBlocks).Select(c => c.Task.JobId).Distinct().ToList();
        var blocked = jobIds.Count == 0 ? [] : (await db.JobWorkerFailures
            .Where(f => jobIds.Contains(f.JobId) && workerIds.Contains(f.WorkerId) && f.BlockedAt != null)
            .Select(f => new { f.JobId, f.WorkerId })
            .ToListAsync(cancellationToken)).Select(f => (f.JobId, f.WorkerId)).ToHashSet();
        var unseenWorkers = workerIds.Where(w => !_registeredWorkers.ContainsKey(w)).ToList();
        var knownWorkers = unseenWorkers.Count == 0 ? [] : await db.Workers.Where(w => unseenWorkers.Contains(w.Id)).Select(w => w.Id).ToListAsync(cancellationToken);
        knownWorkers.ForEach(w => _registeredWorkers.TryAdd(w, true));

        var decisions = new ClaimDecision?[claims.Count];
        var claimant = new Dictionary<Guid, int>();
        var superseded = false;
        for (var i = 0; i < claims.Count; i++)
        {
            var claim = claims[i];
            if (!contexts.TryGetValue(claim.AttemptId, out var context))
            {
                decisions[i] = new ClaimDecision(false, "unknown attempt");
            }
            else if (context.Attempt.State != AttemptState.Queued)
            {
                decisions[i] = Repeated(context.Attempt.State, context.Attempt.WorkerId, claim.WorkerId);
            }
            else if (!claimant.ContainsKey(claim.AttemptId))
            {
                var refusal = context.JobState is not (JobState.Queued or JobState.Running) ? $"job is {context.JobState}"
                    : context.Paused ? "job is paused"
                    // Queued but not yet claimed when the project or the job reached its limit: it has spent nothing,
                    // so it waits with the other tasks (only attempts already running finish past the limit).
                    : context.StoppedBy is { } budget ? (budget == "project" ? $"project {context.Project}" : $"job {context.Task.JobId}") + " reached its hard budget"
                    : blocked.Contains((context.Task.JobId, claim.WorkerId)) && await IsBlockedAsync(db, context.Task.JobId, claim.WorkerId, claim.Pool, now, cancellationToken) ? $"worker {claim.WorkerId} is blocked for job {context.Task.JobId} after repeated failures"
                    : null;
                if (refusal is not null)
                {
                    // The attempt will never run: retire it and hand the task back to the dispatcher, which gives it
                    // a new attempt when the job may run again (another worker is likely to take that one).
                    await SupersedeAsync(db, claim.AttemptId, context.Task.Id, refusal, now, cancellationToken);
                    decisions[i] = new ClaimDecision(false, refusal);
                    superseded = true;
                }

                claimant[claim.AttemptId] = i;
            }
        }

        // Only one claim can move an attempt out of Queued: of two concurrent claims, the second updates no row.
        var contested = claimant.Where(c => decisions[c.Value] is null).ToList();
        var (moved, started) = await ClaimQueuedAsync(db, [.. contested.Select(c => (c.Key, claims[c.Value].WorkerId))], now, cancellationToken);

        // Each attempt is claimed by one worker's statement at most: when every row moved, every claimant won, and
        // only a lost race needs a look at who holds what.
        var won = contested.Select(c => c.Key).ToList();
        if (moved.Count < contested.Count)
        {
            var holders = await db.Attempts.Where(a => won.Contains(a.Id)).Select(a => new { a.Id, a.State, a.WorkerId }).ToDictionaryAsync(a => a.Id, cancellationToken);
            won = [.. contested.Where(c => holders[c.Key].State == AttemptState.Claimed && holders[c.Key].WorkerId == claims[c.Value].WorkerId).Select(c => c.Key)];
            foreach (var (attemptId, index) in contested.Where(c => !won.Contains(c.Key)))
            {
                decisions[index] = Repeated(holders[attemptId].State, holders[attemptId].WorkerId, claims[index].WorkerId);
            }
        }

        foreach (var (_, index) in contested.Where(c => decisions[c.Value] is null))
        {
            decisions[index] = new ClaimDecision(true, "claimed");
        }

        // Attempts another claim of the same worker moved (a duplicated request) are started here if that one did not.
        var heldAlready = won.Where(id => !moved.Contains(id)).ToList();
        started += heldAlready.Count == 0 ? 0 : await StartAsync(db, heldAlready, now, cancellationToken);
        if (started < won.Count)
        {
            // Some tasks moved on while their attempts waited (cancelled, or given a newer attempt): those attempts
            // never run. A task a concurrent claim of the same worker already started is still running.
            var running = await db.Tasks.Where(t => won.Contains(t.CurrentAttemptId!.Value) && t.State == RenderTaskState.Running).Select(t => t.CurrentAttemptId!.Value).ToListAsync(cancellationToken);
            var stale = won.Except(running).ToList();
            await db.Attempts.Where(a => stale.Contains(a.Id) && a.State == AttemptState.Claimed)
                .ExecuteUpdateAsync(set => set.SetProperty(a => a.State, AttemptState.Superseded).SetProperty(a => a.FinishedAt, now), cancellationToken);
            foreach (var attemptId in stale)
            {
                decisions[claimant[attemptId]] = new ClaimDecision(false, "attempt was superseded");
            }

            won = running;
        }

        // Heartbeats keep the fleet's rows current; a granted claim only registers a worker not seen before (a refused
        // claimant leaves no trace: the fleet shows the workers that run something).
        var registering = won.Select(id => claims[claimant[id]]).Where(c => !_registeredWorkers.ContainsKey(c.WorkerId) && !knownWorkers.Contains(c.WorkerId)).DistinctBy(c => c.WorkerId).ToList();
        foreach (var claim in registering)
        {
            await UpsertWorkerAsync(db, claim.WorkerId, claim.Pool, claim.DeviceSku, claim.DeviceCount, claim.Hostname, slots: null, device: null, now, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        registering.ForEach(c => _registeredWorkers.TryAdd(c.WorkerId, true));
        if (superseded)
        {
            dispatchSignal.Wake();
        }

        // A later claim of an attempt already decided in this batch follows the first one's outcome.
        return [.. claims.Select((claim, i) => decisions[i] ?? FollowFirst(decisions[claimant[claim.AttemptId]]!, claims[claimant[claim.AttemptId]].WorkerId, claim.WorkerId))];
    }

    /// <summary>
    /// Moves the claimants' attempts <c>Queued → Claimed</c> and, on PostgreSQL in the same statement, their tasks
    /// <c>Dispatched → Running</c> with their shots and jobs (as <see cref="StartAsync"/> does). Returns the attempts
    /// this claim moved and how many of their tasks started.
    /// </summary>
    private async Task<(HashSet<Guid> Moved, int Started)> ClaimQueuedAsync(FarmDbContext db, List<(Guid AttemptId, string WorkerId)> claimants, DateTime now, CancellationToken cancellationToken)
    {
        if (claimants.Count == 0)
        {
            return ([], 0);
        }

        var leaseExpiresAt = now + options.LeaseDuration;
        if (db.Database.IsNpgsql())
        {
            // In id order, as heartbeats renew them: two statements locking the same attempts never wait in a circle.
            var ordered = claimants.OrderBy(c => c.AttemptId).ToList();
            Guid[] ids = [.. ordered.Select(c => c.AttemptId)];
            string[] workers = [.. ordered.Select(c => c.WorkerId)];
            var rows = await db.Database.SqlQuery<ClaimedAttempt>($"""
                WITH claimed AS (
                    UPDATE attempts AS a
                    SET state = 'Claimed', worker_id = v.worker_id, claimed_at = {now}, last_heartbeat_at = {now}, lease_expires_at = {leaseExpiresAt}
                    FROM unnest({ids}, {workers}) AS v(id, worker_id)
                    WHERE a.id = v.id AND a.state = 'Queued'
                    RETURNING a.id
                ), started AS (
                    UPDATE tasks SET state = 'Running', updated_at = {now}
                    WHERE current_attempt_id IN (SELECT id FROM claimed) AND state = 'Dispatched'
                    RETURNING current_attempt_id, shot_id, job_id
                ), shots_started AS (
                    UPDATE shots SET state = 'Running' WHERE id IN (SELECT shot_id FROM started) AND state = 'Queued'
                ), jobs_started AS (
                    UPDATE jobs SET state = 'Running' WHERE id IN (SELECT job_id FROM started) AND state = 'Queued'
                )
                SELECT c.id AS "AttemptId", s.current_attempt_id IS NOT NULL AS "Started"
                FROM claimed AS c LEFT JOIN started AS s ON s.current_attempt_id = c.id
                """).ToListAsync(cancellationToken);
            return ([.. rows.Select(r => r.AttemptId)], rows.Count(r => r.Started));
        }

        var moved = new HashSet<Guid>();
        foreach (var byWorker in claimants.GroupBy(c => c.WorkerId, StringComparer.Ordinal))
        {
            var ids = byWorker.Select(c => c.AttemptId).ToList();
            var queued = await db.Attempts.Where(a => ids.Contains(a.Id) && a.State == AttemptState.Queued).Select(a => a.Id).ToListAsync(cancellationToken);
            await db.Attempts
                .Where(a => queued.Contains(a.Id) && a.State == AttemptState.Queued)
                .ExecuteUpdateAsync(
                    set => set.SetProperty(a => a.State, AttemptState.Claimed)
                        .SetProperty(a => a.WorkerId, byWorker.Key)
                        .SetProperty(a => a.ClaimedAt, now)
                        .SetProperty(a => a.LastHeartbeatAt, now)
                        .SetProperty(a => a.LeaseExpiresAt, leaseExpiresAt),
                    cancellationToken);
            moved.UnionWith(queued);
        }

        return (moved, await StartAsync(db, [.. moved], now, cancellationToken));
    }

    private sealed record ClaimedAttempt(Guid AttemptId, bool Started);

    /// <summary>
    /// Moves the won attempts' tasks <c>Dispatched → Running</c>, and the shots and jobs of the tasks now running
    /// from <c>Queued</c> to <c>Running</c>; returns how many tasks moved. One statement on PostgreSQL: a claim is
    /// on the path from Ready to a working device, and each round trip of its transaction is waited for.
    /// </summary>
    private static async Task<int> StartAsync(FarmDbContext db, List<Guid> won, DateTime now, CancellationToken cancellationToken)
    {
        if (db.Database.IsNpgsql())
        {
            Guid[] ids = [.. won];
            return (await db.Database.SqlQuery<int>($"""
                WITH started AS (
                    UPDATE tasks SET state = 'Running', updated_at = {now}
                    WHERE current_attempt_id = ANY({ids}) AND state = 'Dispatched'
                    RETURNING shot_id, job_id
                ), shots_started AS (
                    UPDATE shots SET state = 'Running' WHERE id IN (SELECT shot_id FROM started) AND state = 'Queued'
                ), jobs_started AS (
                    UPDATE jobs SET state = 'Running' WHERE id IN (SELECT job_id FROM started) AND state = 'Queued'
                )
                SELECT count(*)::int AS "Value" FROM started
                """).ToListAsync(cancellationToken)).Single();
        }

        var started = await db.Tasks
            .Where(t => won.Contains(t.CurrentAttemptId!.Value) && t.State == RenderTaskState.Dispatched)
            .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Running).SetProperty(t => t.UpdatedAt, now), cancellationToken);
        var running = db.Tasks.Where(t => won.Contains(t.CurrentAttemptId!.Value) && t.State == RenderTaskState.Running);
        await db.Shots.Where(s => s.State == ShotState.Queued && running.Any(t => t.ShotId == s.Id))
            .ExecuteUpdateAsync(set => set.SetProperty(s => s.State, ShotState.Running), cancellationToken);
        await db.Jobs.Where(j => j.State == JobState.Queued && running.Any(t => t.JobId == j.Id))
            .ExecuteUpdateAsync(set => set.SetProperty(j => j.State, JobState.Running), cancellationToken);
        return started;
    }

    private static ClaimDecision FollowFirst(ClaimDecision first, string firstWorker, string worker) =>
        !first.Granted ? first
            : string.Equals(firstWorker, worker, StringComparison.Ordinal) ? new ClaimDecision(true, "already claimed by this worker")
            : new ClaimDecision(false, "attempt is Claimed, not Queued");

    private static ClaimDecision Repeated(AttemptState state, string? holder, string claimant) =>
        state == AttemptState.Claimed && string.Equals(holder, claimant, StringComparison.Ordinal)
            ? new ClaimDecision(true, "already claimed by this worker")
            : new ClaimDecision(false, $"attempt is {state}, not Queued");

    /// <summary>
    /// Renews the leases of the attempts a worker still holds, stores their new log lines and says which of them
    /// to stop (lost, cancelled or superseded meanwhile).
    /// </summary>
    public async Task<HeartbeatAcknowledged> HeartbeatAsync(WorkerHeartbeat heartbeat, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var joined = await UpsertWorkerAsync(db, heartbeat.WorkerId, heartbeat.Pool, heartbeat.DeviceSku, heartbeat.DeviceCount, heartbeat.Hostname, heartbeat.Slots, heartbeat, now, cancellationToken);

        var ids = heartbeat.Attempts.Select(a => a.AttemptId).ToList();
        var rows = await (
            from attempt in db.Attempts
            join task in db.Tasks on attempt.TaskId equals task.Id
            where ids.Contains(attempt.Id)
            select new { attempt.Id, attempt.State, attempt.WorkerId, TaskId = task.Id, task.CurrentAttemptId, TaskState = task.State, task.Progress })
            .AsNoTracking()
            .ToDictionaryAsync(r => r.Id, cancellationToken);
        var stop = new List<StopAttempt>();
        var renewed = new List<HeldAttempt>();
        var progressed = new List<(Guid TaskId, Guid AttemptId, double Fraction)>();
        await StoreLogAsync(db, [.. heartbeat.Attempts.Where(held => rows.ContainsKey(held.AttemptId)).Select(held => (held.AttemptId, held.Log))], cancellationToken);
        foreach (var held in heartbeat.Attempts.OrderBy(a => a.AttemptId))
        {
            if (!rows.TryGetValue(held.AttemptId, out var row))
            {
                stop.Add(new StopAttempt { AttemptId = held.AttemptId, Reason = "the coordinator does not know this attempt" });
                continue;
            }

            if (row.State != AttemptState.Claimed || !string.Equals(row.WorkerId, heartbeat.WorkerId, StringComparison.Ordinal))
            {
                stop.Add(new StopAttempt { AttemptId = held.AttemptId, Reason = $"attempt is {row.State}" });
                continue;
            }

            // A cancelled task's attempt keeps its lease until the worker reports it stopped, so that it is billed
            // for the time it really ran rather than declared lost.
            renewed.Add(held);
            if (row.CurrentAttemptId != held.AttemptId || row.TaskState != RenderTaskState.Running)
            {
                stop.Add(new StopAttempt { AttemptId = held.AttemptId, Reason = $"task is {row.TaskState}" });
                continue;
            }

            // Attempts waiting in a bundle for a slot report no progress: their rows are left alone.
            var fraction = Fraction(held.Completed, held.Total);
            if (fraction != row.Progress)
            {
                progressed.Add((row.TaskId, held.AttemptId, fraction));
            }
        }

        await RenewLeasesAsync(db, renewed, now, cancellationToken);
        await RecordProgressAsync(db, progressed, cancellationToken);
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        if (joined)
        {
            // A new worker (or a new pool) gets work now, not when the dispatcher next reads the fleet.
            dispatcher.ForgetFleetView();
            dispatchSignal.Wake();
        }

        return new HeartbeatAcknowledged { Stop = [.. stop] };
    }

    /// <summary>
    /// Moves the held attempts' leases forward, in one statement on PostgreSQL: a worker holds every attempt of the
    /// bundles it claimed ahead (hundreds of one-frame tasks), and a statement per attempt kept their rows locked, and
    /// the success transactions waiting on them, for as long as that many round trips took.
    /// </summary>
    private async Task RenewLeasesAsync(FarmDbContext db, List<HeldAttempt> held, DateTime now, CancellationToken cancellationToken)
    {
        var leaseExpiresAt = now + options.LeaseDuration;
        if (held.Count == 0)
        {
            return;
        }

        if (db.Database.IsNpgsql())
        {
            Guid[] ids = [.. held.Select(h => h.AttemptId)];
            double[] deviceSeconds = [.. held.Select(h => h.DeviceSeconds)];
            await db.Database.ExecuteSqlAsync($"""
                UPDATE attempts AS a
                SET last_heartbeat_at = {now}, lease_expires_at = {leaseExpiresAt}, device_seconds = v.device_seconds
                FROM unnest({ids}, {deviceSeconds}) AS v(id, device_seconds)
                WHERE a.id = v.id AND a.state = 'Claimed'
                """, cancellationToken);
            return;
        }

        foreach (var attempt in held)
        {
            await db.Attempts.Where(a => a.Id == attempt.AttemptId && a.State == AttemptState.Claimed)
                .ExecuteUpdateAsync(
                    set => set.SetProperty(a => a.LastHeartbeatAt, now)
                        .SetProperty(a => a.LeaseExpiresAt, leaseExpiresAt)
                        .SetProperty(a => a.DeviceSeconds, attempt.DeviceSeconds),
                    cancellationToken);
        }
    }

    /// <summary>The running tasks' progress, each only while the reporting attempt is still its current one.</summary>
    private static async Task RecordProgressAsync(FarmDbContext db, List<(Guid TaskId, Guid AttemptId, double Fraction)> progressed, CancellationToken cancellationToken)
    {
        if (progressed.Count == 0)
        {
            return;
        }

        if (db.Database.IsNpgsql())
        {
            Guid[] taskIds = [.. progressed.Select(p => p.TaskId)], attemptIds = [.. progressed.Select(p => p.AttemptId)];
            double[] fractions = [.. progressed.Select(p => p.Fraction)];
            await db.Database.ExecuteSqlAsync($"""
                UPDATE tasks AS t
                SET progress = v.fraction
                FROM unnest({taskIds}, {attemptIds}, {fractions}) AS v(task_id, attempt_id, fraction)
                WHERE t.id = v.task_id AND t.current_attempt_id = v.attempt_id AND t.state = 'Running'
                """, cancellationToken);
            return;
        }

        foreach (var (taskId, attemptId, fraction) in progressed)
        {
            await db.Tasks.Where(t => t.Id == taskId && t.CurrentAttemptId == attemptId && t.State == RenderTaskState.Running)
                .ExecuteUpdateAsync(set => set.SetProperty(t => t.Progress, fraction), cancellationToken);
        }
    }

    public async Task ProgressAsync(TaskProgressed progress, CancellationToken cancellationToken)
    {
        var fraction = Fraction(progress.Completed, progress.Total);
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await db.Tasks.Where(t => t.CurrentAttemptId == progress.AttemptId && t.State == RenderTaskState.Running)
            .ExecuteUpdateAsync(set => set.SetProperty(t => t.Progress, fraction), cancellationToken);
    }

    /// <summary>
    /// Applies a batch of successes in one transaction: commits are the farm's scarce resource, and the many
    /// successes of one shot all count down the same dependants (its assembly), whose row lock would otherwise
    /// serialise one commit per task. A duplicate in the batch or a concurrent one rolls the batch back; the retry
    /// sees what was committed and does nothing twice.
    /// </summary>
    public async Task SucceededAsync(IReadOnlyCollection<TaskSucceeded> batch, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var reports = batch.DistinctBy(s => s.AttemptId).ToDictionary(s => s.AttemptId);
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var ids = reports.Keys.ToList();
        var contexts = await EventContexts(db, ids).ToListAsync(cancellationToken);
        foreach (var unknown in ids.Except(contexts.Select(c => c.Attempt.Id)))
        {
            logger.LogWarning("TaskSucceeded for unknown attempt {AttemptId} ignored", unknown);
        }

        var live = contexts.Where(c => c.Attempt.State == AttemptState.Claimed).ToList();
        await ledger.AppendAsync(
            db,
            [.. contexts.Where(c => !c.Billed).Select(c => new Bill(c.Attempt, c.Task, c.Project, reports[c.Attempt.Id].WorkerId, reports[c.Attempt.Id].Usage, "succeeded"))],
            now,
            cancellationToken);

        await StoreLogAsync(db, [.. contexts.Select(c => (c.Attempt.Id, reports[c.Attempt.Id].Log))], cancellationToken);
        var finished = await FinishSucceededAttemptsAsync(db, [.. live.Select(c => reports[c.Attempt.Id])], now, cancellationToken);
        var wonAttempts = await SucceedTasksAsync(db, finished, now, cancellationToken);
        var released = new List<Guid>();
        var assembled = new List<(Guid ShotId, string Kind, TaskSucceeded Report)>();
        foreach (var context in live.Where(c => wonAttempts.Contains(c.Attempt.Id)))
        {
            released.Add(context.Task.Id);
            if (context.Task.Kind is "assemble" or "interpolate")
            {
                assembled.Add((context.Task.ShotId, context.Task.Kind, reports[context.Attempt.Id]));
            }
        }

        // Cancelled while they were finishing: their frames are written and paid for, so a retry of the job keeps them
        // instead of rendering (and billing) them again. Dependants stay as the cancellation left them.
        var keptAfterCancel = finished.Except(wonAttempts).ToList();
        if (keptAfterCancel.Count > 0)
        {
            // By the tasks' ids: the index on the current attempt holds only the live (Dispatched, Running) tasks.
            var keptTasks = live.Where(c => keptAfterCancel.Contains(c.Attempt.Id)).Select(c => c.Task.Id).ToList();
            await db.Tasks.Where(t => keptTasks.Contains(t.Id) && keptAfterCancel.Contains(t.CurrentAttemptId!.Value) && t.State == RenderTaskState.Cancelled && t.Kind != "assemble" && t.Kind != "interpolate")
                .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Succeeded).SetProperty(t => t.Progress, 1.0).SetProperty(t => t.Error, (string?)null).SetProperty(t => t.UpdatedAt, now), cancellationToken);
        }

        await ReleaseDependantsAsync(db, released, now, cancellationToken);
        foreach (var (shotId, kind, report) in assembled)
        {
            // The manifest is written before the commit: if the commit fails, the redelivered event rewrites it.
            await shotFinisher.SucceedAsync(db, shotId, kind, report, now, cancellationToken);
        }

        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        if (released.Count > 0)
        {
            dispatchSignal.Wake();
        }
    }

    /// <summary>
    /// Bills the failed attempt and decides its task by failure class: retry with backoff (transient), retry with a
    /// smaller batch (out of memory), fail the shot (fatal, or out of retries), or nothing (stopped on request).
    /// </summary>
    public async Task FailedAsync(TaskFailed failed, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var context = await EventContexts(db, [failed.AttemptId]).SingleOrDefaultAsync(cancellationToken);
        if (context is null)
        {
            logger.LogWarning("TaskFailed for unknown attempt {AttemptId} ignored", failed.AttemptId);
            return;
        }

        var (attempt, task) = (context.Attempt, context.Task);
        var failure = FailurePolicy.Parse(failed.Classification);
        if (!context.Billed)
        {
            await ledger.AppendAsync(db, [new Bill(attempt, task, context.Project, failed.WorkerId, failed.Usage, failure == FailureClass.Cancelled ? "cancelled" : "failed")], now, cancellationToken);
        }

        await StoreLogAsync(db, [(attempt.Id, failed.Log)], cancellationToken);
        var reason = $"{task.Key} ({failed.Classification}): {Sanitize(failed.Reason)}";
        var finished = await db.Attempts
            .Where(a => a.Id == attempt.Id && a.State == AttemptState.Claimed)
            .ExecuteUpdateAsync(
                set => set.SetProperty(a => a.State, failure == FailureClass.Cancelled ? AttemptState.Cancelled : AttemptState.Failed)
                    .SetProperty(a => a.FinishedAt, now)
                    .SetProperty(a => a.ReportedAt, failed.ReportedAt)
                    .SetProperty(a => a.DeviceSeconds, failed.Usage.DeviceSeconds)
                    .SetProperty(a => a.FailureClass, failed.Classification)
                    .SetProperty(a => a.Error, reason),
                cancellationToken);
        var retryScheduled = false;
        if (finished == 1)
        {
            if (failure != FailureClass.Cancelled)
            {
                await CountWorkerFailureAsync(db, task.JobId, failed.WorkerId, now, cancellationToken);
            }

            if (failure == FailureClass.Cancelled)
            {
                retryScheduled = await RequeueResumedAsync(db, task, attempt.Id, now, cancellationToken);
            }

            var outgrown = failure == FailureClass.OutOfMemory ? await OutgrownPoolMemoryAsync(db, attempt.Pool, now, cancellationToken) : null;
            var decision = FailurePolicy.Decide(failure, task.Failures, context.Retries, task.MaxFrameBatch, task.LastFrame - task.FirstFrame + 1, options.RetryBackoff, options.RetryBackoffMax, reason, biggerPoolLive: outgrown is not null);
            retryScheduled |= await ApplyAsync(db, task, attempt.Id, decision, now, cancellationToken);
            if (retryScheduled && outgrown is { } memory)
            {
                // The task now asks for more than that pool's devices have, so the dispatcher places it in a bigger pool.
                await db.Tasks.Where(t => t.Id == task.Id && t.MinMemoryBytes <= memory)
                    .ExecuteUpdateAsync(set => set.SetProperty(t => t.MinMemoryBytes, memory + 1), cancellationToken);
                logger.LogInformation("Task {TaskKey} of job {JobId} ran out of memory in pool {Pool} ({Memory} bytes); it moves to a bigger pool", task.Key, task.JobId, attempt.Pool, memory);
            }
        }

        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        if (retryScheduled)
        {
            dispatchSignal.Wake();
        }
    }

    /// <summary>
    /// A stop that is no failure of the task's gives it back to the dispatcher: a job retried while this attempt was
    /// being stopped kept the attempt as its task's (see the retry), or a worker shutting down never started it.
    /// </summary>
    private static Task<bool> RequeueResumedAsync(FarmDbContext db, Entities.RenderTask task, Guid attemptId, DateTime now, CancellationToken cancellationToken) =>
        RequeueAsync(db, task.Id, attemptId, failures: 0, task.NotBefore, task.MaxFrameBatch, now, cancellationToken);

    /// <summary>Gives the task back to the dispatcher if <paramref name="attemptId"/> is still its running attempt.</summary>
    private static async Task<bool> RequeueAsync(FarmDbContext db, Guid taskId, Guid attemptId, int failures, DateTime? notBefore, int? maxFrameBatch, DateTime now, CancellationToken cancellationToken) =>
        await db.Tasks
            .Where(t => t.Id == taskId && t.CurrentAttemptId == attemptId && t.State == RenderTaskState.Running)
            .ExecuteUpdateAsync(
                set => set.SetProperty(t => t.State, RenderTaskState.Ready)
                    .SetProperty(t => t.CurrentAttemptId, (Guid?)null)
                    .SetProperty(t => t.Failures, t => t.Failures + failures)
                    .SetProperty(t => t.NotBefore, notBefore)
                    .SetProperty(t => t.MaxFrameBatch, maxFrameBatch)
                    .SetProperty(t => t.ReadyAt, now)
                    .SetProperty(t => t.Progress, 0.0)
                    .SetProperty(t => t.UpdatedAt, now),
                cancellationToken) == 1;

    private async Task<bool> ApplyAsync(FarmDbContext db, Entities.RenderTask task, Guid attemptId, FailureDecision decision, DateTime now, CancellationToken cancellationToken)
    {
        switch (decision)
        {
            case FailureDecision.Retry retry:
                var notBefore = retry.Delay > TimeSpan.Zero ? now + retry.Delay : (DateTime?)null;
                var requeued = await RequeueAsync(db, task.Id, attemptId, failures: 1, notBefore, retry.MaxFrameBatch, now, cancellationToken);
                if (requeued)
                {
                    logger.LogInformation("Task {TaskKey} of job {JobId} will run again in {Delay} (failure {Failure})", task.Key, task.JobId, retry.Delay, task.Failures + 1);
                }

                return requeued;
            case FailureDecision.Fail fail:
                var won = await db.Tasks
                    .Where(t => t.Id == task.Id && t.CurrentAttemptId == attemptId && t.State == RenderTaskState.Running)
                    .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Failed).SetProperty(t => t.Error, fail.Reason).SetProperty(t => t.UpdatedAt, now), cancellationToken);
                if (won == 1)
                {
                    await shotFinisher.FailAsync(db, task.ShotId, fail.Reason, now, cancellationToken);
                }

                return false;
            default:
                return false;
        }
    }

    /// <summary>The memory of a pool's devices if a live pool with bigger ones exists; null when none does (or it is unknown).</summary>
    private async Task<long?> OutgrownPoolMemoryAsync(FarmDbContext db, string pool, DateTime now, CancellationToken cancellationToken)
    {
        var liveSince = now - options.LeaseDuration;
        var live = db.Workers.Where(w => w.LastSeenAt >= liveSince && w.DeviceMemoryBytes > 0);
        var poolMemory = await live.Where(w => w.Pool == pool).Select(w => (long?)w.DeviceMemoryBytes).MinAsync(cancellationToken);
        return poolMemory is { } memory && await live.AnyAsync(w => w.Pool != pool && w.DeviceMemoryBytes > memory, cancellationToken) ? memory : null;
    }

    /// <summary>What workers' reports are applied to, in one round trip.</summary>
    private static IQueryable<EventContext> EventContexts(FarmDbContext db, List<Guid> attemptIds) => (
        from attempt in db.Attempts
        join task in db.Tasks on attempt.TaskId equals task.Id
        join job in db.Jobs on task.JobId equals job.Id
        where attemptIds.Contains(attempt.Id)
        select new EventContext(attempt, task, job.Project, job.Retries, db.Usage.Any(u => u.AttemptId == attempt.Id)))
        .AsNoTracking();

    private sealed record EventContext(Attempt Attempt, Entities.RenderTask Task, string Project, int Retries, bool Billed);

    /// <summary>Retires a Queued attempt that must not run and gives its task back to the dispatcher.</summary>
    private static async Task SupersedeAsync(FarmDbContext db, Guid attemptId, Guid taskId, string reason, DateTime now, CancellationToken cancellationToken)
    {
        var retired = await db.Attempts.Where(a => a.Id == attemptId && a.State == AttemptState.Queued)
            .ExecuteUpdateAsync(set => set.SetProperty(a => a.State, AttemptState.Superseded).SetProperty(a => a.FinishedAt, now).SetProperty(a => a.Error, reason), cancellationToken);
        if (retired == 1)
        {
            await db.Tasks.Where(t => t.Id == taskId && t.CurrentAttemptId == attemptId && t.State == RenderTaskState.Dispatched)
                .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Ready).SetProperty(t => t.CurrentAttemptId, (Guid?)null).SetProperty(t => t.ReadyAt, now).SetProperty(t => t.UpdatedAt, now), cancellationToken);
        }
    }

    /// <summary>
    /// True when the worker is blocked for the job and someone else could take the work. A blocked worker is
    /// forgiven (its count reset) when its time is up or when every live worker of its pool is blocked too: a job
    /// must never be stuck on its own blocklist.
    /// </summary>
    private async Task<bool> IsBlockedAsync(FarmDbContext db, Guid jobId, string workerId, string pool, DateTime now, CancellationToken cancellationToken)
    {
        var entry = await db.JobWorkerFailures.AsNoTracking().SingleOrDefaultAsync(f => f.JobId == jobId && f.WorkerId == workerId, cancellationToken);
        if (entry?.BlockedAt is null)
        {
            return false;
        }

        var liveSince = now - options.LeaseDuration;
        var blocked = db.JobWorkerFailures.Where(f => f.JobId == jobId && f.BlockedAt != null).Select(f => f.WorkerId);
        var others = await db.Workers.CountAsync(w => w.Pool == pool && w.Id != workerId && w.LastSeenAt >= liveSince && !blocked.Contains(w.Id), cancellationToken);
        if (WorkerBlocklist.Refuses(entry.BlockedAt, now, options.BlocklistForgiveAfter, others))
        {
            return true;
        }

        await db.JobWorkerFailures.Where(f => f.JobId == jobId && f.WorkerId == workerId)
            .ExecuteUpdateAsync(set => set.SetProperty(f => f.BlockedAt, (DateTime?)null).SetProperty(f => f.Failures, 0), cancellationToken);
        logger.LogInformation("Worker {WorkerId} forgiven for job {JobId} ({Why})", workerId, jobId, others == 0 ? "no other worker can take its tasks" : "its block expired");
        return false;
    }

    private async Task CountWorkerFailureAsync(FarmDbContext db, Guid jobId, string workerId, DateTime now, CancellationToken cancellationToken)
    {
        var entry = await db.JobWorkerFailures.SingleOrDefaultAsync(f => f.JobId == jobId && f.WorkerId == workerId, cancellationToken);
        if (entry is null)
        {
            entry = new JobWorkerFailures { JobId = jobId, WorkerId = workerId };
            db.JobWorkerFailures.Add(entry);
        }

        entry.Failures++;
        if (entry.BlockedAt is null && WorkerBlocklist.Blocks(entry.Failures, options.BlocklistThreshold))
        {
            entry.BlockedAt = now;
            logger.LogWarning("Worker {WorkerId} failed {Failures} tasks of job {JobId}; it gets no more of that job's tasks while others can take them", workerId, entry.Failures, jobId);
        }

        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>
    /// Keeps each numbered line once (a line resent after a lost acknowledgement is skipped), for a batch of attempts
    /// in one statement on PostgreSQL; on SQLite the lines are written by the caller's <c>SaveChanges</c>.
    /// </summary>
    private static async Task StoreLogAsync(FarmDbContext db, IReadOnlyCollection<(Guid AttemptId, AttemptLogEntry[] Lines)> logs, CancellationToken cancellationToken)
    {
        // A heartbeat and the final report may carry the same unacknowledged lines at the same moment; written in one
        // order everywhere, two such transactions wait for each other instead of deadlocking on the unique index.
        var lines = logs.SelectMany(log => log.Lines.DistinctBy(l => l.Seq).Select(line => (log.AttemptId, Line: line)))
            .OrderBy(l => l.AttemptId).ThenBy(l => l.Line.Seq).ToList();
        if (lines.Count == 0)
        {
            return;
        }

        if (db.Database.IsNpgsql())
        {
            Guid[] attemptIds = [.. lines.Select(l => l.AttemptId)];
            int[] seqNumbers = [.. lines.Select(l => l.Line.Seq)];
            DateTime[] times = [.. lines.Select(l => l.Line.At)];
            string[] levels = [.. lines.Select(l => Sanitize(l.Line.Level))];
            string[] messages = [.. lines.Select(l => Sanitize(l.Line.Message))];
            await db.Database.ExecuteSqlAsync($"""
                INSERT INTO attempt_log_lines (attempt_id, seq, logged_at, level, message)
                SELECT line.attempt_id, line.seq, line.logged_at, line.level, line.message
                FROM unnest({attemptIds}, {seqNumbers}, {times}, {levels}, {messages}) AS line(attempt_id, seq, logged_at, level, message)
                ON CONFLICT DO NOTHING
                """, cancellationToken);
            return;
        }

        foreach (var log in lines.GroupBy(l => l.AttemptId))
        {
            var seqs = log.Select(l => l.Line.Seq).ToList();
            var stored = await db.AttemptLogLines.Where(l => l.AttemptId == log.Key && seqs.Contains(l.Seq)).Select(l => l.Seq).ToListAsync(cancellationToken);
            foreach (var (_, line) in log.Where(l => !stored.Contains(l.Line.Seq)))
            {
                db.AttemptLogLines.Add(new AttemptLogLine { AttemptId = log.Key, Seq = line.Seq, LoggedAt = line.At, Level = Sanitize(line.Level), Message = Sanitize(line.Message) });
            }
        }
    }

    /// <summary>Moves the reported attempts still Claimed to Succeeded; returns those it moved.</summary>
    private static async Task<List<Guid>> FinishSucceededAttemptsAsync(FarmDbContext db, List<TaskSucceeded> reports, DateTime now, CancellationToken cancellationToken)
    {
        var results = reports.Select(r => JsonSerializer.Serialize(new AttemptResult(r.Outputs, r.Metrics, r.Facts, r.UnknownWords), SpecJson.Options)).ToArray();
        if (db.Database.IsNpgsql())
        {
            Guid[] ids = [.. reports.Select(r => r.AttemptId)];
            DateTime[] reportedAt = [.. reports.Select(r => r.ReportedAt)];
            double[] deviceSeconds = [.. reports.Select(r => r.Usage.DeviceSeconds)];
            return await db.Database.SqlQuery<Guid>($"""
                UPDATE attempts AS a
                SET state = 'Succeeded', finished_at = {now}, reported_at = v.reported_at, device_seconds = v.device_seconds, result_json = v.result_json
                FROM unnest({ids}, {reportedAt}, {deviceSeconds}, {results}) AS v(id, reported_at, device_seconds, result_json)
                WHERE a.id = v.id AND a.state = 'Claimed'
                RETURNING a.id AS "Value"
                """).ToListAsync(cancellationToken);
        }

        var finished = new List<Guid>();
        for (var i = 0; i < reports.Count; i++)
        {
            var (report, result) = (reports[i], results[i]);
            var updated = await db.Attempts
                .Where(a => a.Id == report.AttemptId && a.State == AttemptState.Claimed)
                .ExecuteUpdateAsync(
                    set => set.SetProperty(a => a.State, AttemptState.Succeeded)
                        .SetProperty(a => a.FinishedAt, now)
                        .SetProperty(a => a.ReportedAt, report.ReportedAt)
                        .SetProperty(a => a.DeviceSeconds, report.Usage.DeviceSeconds)
                        .SetProperty(a => a.ResultJson, result),
                    cancellationToken);
            if (updated == 1)
            {
                finished.Add(report.AttemptId);
            }
        }

        return finished;
    }

    /// <summary>
    /// Moves the Running tasks whose current attempt just succeeded to Succeeded; returns those attempts. A task
    /// cancelled or given a newer attempt meanwhile is left alone.
    /// </summary>
    private static async Task<HashSet<Guid>> SucceedTasksAsync(FarmDbContext db, List<Guid> attempts, DateTime now, CancellationToken cancellationToken)
    {
        if (attempts.Count == 0)
        {
            return [];
        }

        if (db.Database.IsNpgsql())
        {
            Guid[] ids = [.. attempts];
            return [.. await db.Database.SqlQuery<Guid>($"""
                UPDATE tasks AS t
                SET state = 'Succeeded', progress = 1, updated_at = {now}
                WHERE t.current_attempt_id = ANY({ids}) AND t.state = 'Running'
                RETURNING t.current_attempt_id AS "Value"
                """).ToListAsync(cancellationToken)];
        }

        // SQLite runs one writer at a time: nothing changes between this read and the update.
        var running = await db.Tasks.Where(t => attempts.Contains(t.CurrentAttemptId!.Value) && t.State == RenderTaskState.Running).Select(t => t.CurrentAttemptId!.Value).ToListAsync(cancellationToken);
        await db.Tasks.Where(t => running.Contains(t.CurrentAttemptId!.Value) && t.State == RenderTaskState.Running)
            .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Succeeded).SetProperty(t => t.Progress, 1.0).SetProperty(t => t.UpdatedAt, now), cancellationToken);
        return [.. running];
    }

    private static double Fraction(int completed, int total) => total <= 0 ? 0 : Math.Clamp((double)completed / total, 0, 1);

    /// <summary>PostgreSQL text cannot hold NUL; a worker's message is bounded so one attempt cannot bloat the table.</summary>
    private static string Sanitize(string text) =>
        (text.Length > MaxLogLineLength ? text[..MaxLogLineLength] + "…" : text).Replace('\0', '?');

    /// <summary>
    /// Counts the Blocked dependants of the succeeded tasks down (by how many of their dependencies just succeeded) and
    /// makes those that reach zero Ready, in one statement on PostgreSQL.
    /// </summary>
    private static async Task ReleaseDependantsAsync(FarmDbContext db, List<Guid> succeeded, DateTime now, CancellationToken cancellationToken)
    {
        if (succeeded.Count == 0)
        {
            return;
        }

        if (db.Database.IsNpgsql())
        {
            Guid[] ids = [.. succeeded];
            await db.Database.ExecuteSqlAsync($"""
                UPDATE tasks AS t
                SET pending_dependencies = t.pending_dependencies - d.done,
                    state = CASE WHEN t.pending_dependencies = d.done THEN 'Ready' ELSE t.state END,
                    ready_at = CASE WHEN t.pending_dependencies = d.done THEN {now} ELSE t.ready_at END,
                    updated_at = {now}
                FROM (SELECT task_id, count(*)::int AS done FROM task_dependencies WHERE depends_on_task_id = ANY({ids}) GROUP BY task_id) AS d
                WHERE t.id = d.task_id AND t.state = 'Blocked'
                """, cancellationToken);
            return;
        }

        foreach (var taskId in succeeded)
        {
            await db.Tasks.Where(t => db.TaskDependencies.Where(d => d.DependsOnTaskId == taskId).Select(d => d.TaskId).Contains(t.Id) && t.State == RenderTaskState.Blocked)
                .ExecuteUpdateAsync(
                    set => set.SetProperty(t => t.PendingDependencies, t => t.PendingDependencies - 1)
                        .SetProperty(t => t.State, t => t.PendingDependencies == 1 ? RenderTaskState.Ready : RenderTaskState.Blocked)
                        .SetProperty(t => t.ReadyAt, t => t.PendingDependencies == 1 ? now : t.ReadyAt)
                        .SetProperty(t => t.UpdatedAt, now),
                    cancellationToken);
        }
    }

    /// <summary>
    /// Registers or refreshes a worker; a heartbeat also brings the device it found (a claim does not). True when the
    /// worker was not known before.
    /// </summary>
    private static async Task<bool> UpsertWorkerAsync(FarmDbContext db, string workerId, string pool, string deviceSku, int deviceCount, string hostname, int? slots, WorkerHeartbeat? device, DateTime now, CancellationToken cancellationToken)
    {
        var engine = device?.DiffusionEngine;
        var deviceName = device?.DeviceName;
        var deviceMemory = device?.DeviceName is null ? (long?)null : device.DeviceMemoryBytes;
        var engines = device is null ? null : device.Engines.Length == 0 ? null : string.Join(',', device.Engines);
        var tags = device is null ? null : string.Join(',', device.Tags);
        var updated = await db.Workers.Where(w => w.Id == workerId)
            .ExecuteUpdateAsync(
                set => set.SetProperty(w => w.LastSeenAt, now)
                    .SetProperty(w => w.Pool, pool)
                    .SetProperty(w => w.DeviceSku, deviceSku)
                    .SetProperty(w => w.DeviceCount, deviceCount)
                    .SetProperty(w => w.Hostname, hostname)
                    .SetProperty(w => w.Slots, w => slots ?? w.Slots)
                    .SetProperty(w => w.DiffusionEngine, w => deviceName == null ? w.DiffusionEngine : engine)
                    .SetProperty(w => w.DeviceName, w => deviceName ?? w.DeviceName)
                    .SetProperty(w => w.DeviceMemoryBytes, w => deviceMemory ?? w.DeviceMemoryBytes)
                    .SetProperty(w => w.Engines, w => device == null ? w.Engines : engines)
                    .SetProperty(w => w.Tags, w => device == null ? w.Tags : tags),
                cancellationToken);
        if (updated == 0)
        {
            db.Workers.Add(new Worker { Id = workerId, Pool = pool, DeviceSku = deviceSku, DeviceCount = deviceCount, Hostname = hostname, Slots = slots ?? 1, FirstSeenAt = now, LastSeenAt = now, DiffusionEngine = engine, DeviceName = deviceName, DeviceMemoryBytes = deviceMemory ?? 0, Engines = engines, Tags = tags });
            await db.SaveChangesAsync(cancellationToken);
        }

        return updated == 0;
    }
}

/// <summary>What a succeeded attempt produced, kept on the attempt row for the manifest.</summary>
public sealed record AttemptResult(
    IReadOnlyList<string> Outputs,
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyDictionary<string, string> Facts,
    IReadOnlyList<string> UnknownWords);
