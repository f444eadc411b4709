using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// Declares Lost the claimed attempts whose lease ran out (their worker died, hung or lost its network), bills them
/// up to their last heartbeat, and hands their tasks back to the dispatcher. Anything the lost attempt reports later
/// changes nothing: its id is no longer the task's current one.
/// </summary>
public sealed class LeaseSweeper(
    IDbContextFactory<FarmDbContext> contextFactory,
    CoordinatorOptions options,
    UsageLedger ledger,
    ShotFinisher shotFinisher,
    DispatchSignal dispatchSignal,
    TimeProvider time,
    ILogger<LeaseSweeper> logger)
{
    private const string SweepName = "lease-sweep";
    private const string GraceName = "lease-grace";

    /// <summary>
    /// A longer gap between two sweeps means the coordinator (or its database) was down and could not hear
    /// heartbeats: leases that ran out meanwhile say nothing about the workers.
    /// </summary>
    private TimeSpan OutageGap => TimeSpan.FromTicks(Math.Max(options.SweepInterval.Ticks * 5, TimeSpan.FromSeconds(10).Ticks));

    /// <summary>Runs one sweep; returns the attempts declared lost.</summary>
    public async Task<int> SweepAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var run = await db.MaintenanceRuns.SingleOrDefaultAsync(r => r.Name == SweepName, cancellationToken);
        var gap = run is null ? TimeSpan.MaxValue : now - run.LastRunAt;
        if (run is null)
        {
            db.MaintenanceRuns.Add(new MaintenanceRun { Name = SweepName, LastRunAt = now });
        }
        else
        {
            run.LastRunAt = now;
        }

        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException) when (run is null)
        {
            // Another sweep (the other Hangfire worker or coordinator) made the first row at the same moment.
            return 0;
        }

        if (run is null)
        {
            return 0;
        }

        if (gap > OutageGap && await TakeGraceAsync(db, now, cancellationToken))
        {
            // Grace after an outage: every claimed attempt gets a full lease from now, so that only workers that
            // stay silent after the coordinator is back are declared lost.
            var leaseUntil = now + options.LeaseDuration;
            var renewed = await db.Attempts.Where(a => a.State == AttemptState.Claimed && a.LeaseExpiresAt < leaseUntil)
                .ExecuteUpdateAsync(set => set.SetProperty(a => a.LeaseExpiresAt, leaseUntil), cancellationToken);
            logger.LogWarning("No lease sweep for {Gap}: the coordinator could not hear workers; {Count} claimed attempt(s) get a fresh lease until {Until:O}", gap, renewed, leaseUntil);
            return 0;
        }

        var expired = await db.Attempts.AsNoTracking()
            .Where(a => a.State == AttemptState.Claimed && a.LeaseExpiresAt < now)
            .Select(a => a.Id)
            .ToListAsync(cancellationToken);
        var lost = 0;
        foreach (var attemptId in expired)
        {
            if (await DeclareLostAsync(attemptId, now, cancellationToken))
            {
                lost++;
            }
        }

        if (lost > 0)
        {
            dispatchSignal.Wake();
        }

        return lost;
    }

    /// <summary>
    /// At most one grace per two leases: sweeps that keep running late (a starved scheduler) must not renew every lease
    /// for ever, or a dead worker's task would never run again.
    /// </summary>
    private async Task<bool> TakeGraceAsync(FarmDbContext db, DateTime now, CancellationToken cancellationToken)
    {
        var grace = await db.MaintenanceRuns.SingleOrDefaultAsync(r => r.Name == GraceName, cancellationToken);
        if (grace is not null && now - grace.LastRunAt < 2 * options.LeaseDuration)
        {
            logger.LogWarning("The lease sweep runs late, but leases were renewed at {At:O}: they are judged as they stand", grace.LastRunAt);
            return false;
        }

        if (grace is null)
        {
            db.MaintenanceRuns.Add(new MaintenanceRun { Name = GraceName, LastRunAt = now });
        }
        else
        {
            grace.LastRunAt = now;
        }

        await db.SaveChangesAsync(cancellationToken);
        return true;
    }

    private async Task<bool> DeclareLostAsync(Guid attemptId, DateTime now, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var attempt = await db.Attempts.AsNoTracking().SingleAsync(a => a.Id == attemptId, cancellationToken);
        var reason = $"lost: no heartbeat from worker {attempt.WorkerId} since {attempt.LastHeartbeatAt:O}";
        var declared = await db.Attempts.Where(a => a.Id == attemptId && a.State == AttemptState.Claimed && a.LeaseExpiresAt < now)
            .ExecuteUpdateAsync(set => set.SetProperty(a => a.State, AttemptState.Lost).SetProperty(a => a.FinishedAt, now).SetProperty(a => a.FailureClass, "lost").SetProperty(a => a.Error, reason), cancellationToken);
        if (declared == 0)
        {
            // A heartbeat or the attempt's own report got there first.
            return false;
        }

        var task = await db.Tasks.AsNoTracking().SingleAsync(t => t.Id == attempt.TaskId, cancellationToken);
        var worker = await db.Workers.AsNoTracking().SingleOrDefaultAsync(w => w.Id == attempt.WorkerId, cancellationToken);
        var usage = new DeviceUsage
        {
            DeviceSku = worker?.DeviceSku ?? attempt.Pool,
            DeviceCount = worker?.DeviceCount ?? 1,
            DeviceSeconds = attempt.DeviceSeconds,
            EnergyJoules = 0,
            EnergyEstimated = true,
        };
        await ledger.RecordAsync(db, attempt, task, attempt.WorkerId ?? "unknown", usage, "lost", now, cancellationToken);

        var lostBefore = await db.Attempts.CountAsync(a => a.TaskId == task.Id && a.State == AttemptState.Lost, cancellationToken);
        if (lostBefore >= options.MaxLostAttempts)
        {
            var failure = $"{task.Key}: lost {lostBefore} times (the task may be what kills its workers)";
            var failed = await db.Tasks.Where(t => t.Id == task.Id && t.CurrentAttemptId == attemptId && t.State == RenderTaskState.Running)
                .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Failed).SetProperty(t => t.Error, failure).SetProperty(t => t.UpdatedAt, now), cancellationToken);
            if (failed == 1)
            {
                await shotFinisher.FailAsync(db, task.ShotId, failure, now, cancellationToken);
            }
        }
        else
        {
            await db.Tasks.Where(t => t.Id == task.Id && t.CurrentAttemptId == attemptId && t.State == RenderTaskState.Running)
                .ExecuteUpdateAsync(
                    set => set.SetProperty(t => t.State, RenderTaskState.Ready)
                        .SetProperty(t => t.CurrentAttemptId, (Guid?)null)
                        .SetProperty(t => t.ReadyAt, now)
                        .SetProperty(t => t.NotBefore, (DateTime?)null)
                        .SetProperty(t => t.Progress, 0.0)
                        .SetProperty(t => t.UpdatedAt, now),
                    cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        logger.LogWarning("Attempt {AttemptId} of task {TaskKey} (job {JobId}) {Reason}; billed {DeviceSeconds:F1} device-seconds as lost", attemptId, task.Key, task.JobId, reason, attempt.DeviceSeconds);
        return true;
    }
}
