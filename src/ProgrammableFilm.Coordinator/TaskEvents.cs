using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Costs;
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
    ShotFinisher shotFinisher,
    DispatchSignal dispatchSignal,
    TimeProvider time,
    ILogger<TaskEvents> logger)
{
    public async Task<ClaimDecision> ClaimAsync(ClaimAttempt claim, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var context = await LoadAsync(db, claim.AttemptId, cancellationToken);
        if (context is null)
        {
            return new ClaimDecision(false, "unknown attempt");
        }

        var (attempt, task) = context.Value;

        // Only one claim can move the attempt out of Queued: a redelivered message finds it Claimed and is refused.
        var claimed = await db.Attempts
            .Where(a => a.Id == claim.AttemptId && a.State == AttemptState.Queued)
            .ExecuteUpdateAsync(set => set.SetProperty(a => a.State, AttemptState.Claimed).SetProperty(a => a.WorkerId, claim.WorkerId).SetProperty(a => a.ClaimedAt, now), cancellationToken);
        if (claimed == 0)
        {
            return new ClaimDecision(false, $"attempt is {attempt.State}, not Queued");
        }

        var running = await db.Tasks
            .Where(t => t.Id == task.Id && t.CurrentAttemptId == claim.AttemptId && t.State == RenderTaskState.Dispatched)
            .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Running).SetProperty(t => t.UpdatedAt, now), cancellationToken);
        if (running == 0)
        {
            await transaction.RollbackAsync(cancellationToken);
            await db.Attempts.Where(a => a.Id == claim.AttemptId && a.State == AttemptState.Queued)
                .ExecuteUpdateAsync(set => set.SetProperty(a => a.State, AttemptState.Superseded).SetProperty(a => a.FinishedAt, now), cancellationToken);
            return new ClaimDecision(false, "attempt was superseded");
        }

        await UpsertWorkerAsync(db, claim, now, cancellationToken);
        await db.Shots.Where(s => s.Id == task.ShotId && s.State == ShotState.Queued)
            .ExecuteUpdateAsync(set => set.SetProperty(s => s.State, ShotState.Running), cancellationToken);
        await db.Jobs.Where(j => j.Id == task.JobId && j.State == JobState.Queued)
            .ExecuteUpdateAsync(set => set.SetProperty(j => j.State, JobState.Running), cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return new ClaimDecision(true, "claimed");
    }

    public async Task ProgressAsync(TaskProgressed progress, CancellationToken cancellationToken)
    {
        var fraction = progress.Total <= 0 ? 0 : Math.Clamp((double)progress.Completed / progress.Total, 0, 1);
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await db.Tasks.Where(t => t.CurrentAttemptId == progress.AttemptId && t.State == RenderTaskState.Running)
            .ExecuteUpdateAsync(set => set.SetProperty(t => t.Progress, fraction), cancellationToken);
    }

    public async Task SucceededAsync(TaskSucceeded succeeded, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var context = await LoadAsync(db, succeeded.AttemptId, cancellationToken);
        if (context is null)
        {
            logger.LogWarning("TaskSucceeded for unknown attempt {AttemptId} ignored", succeeded.AttemptId);
            return;
        }

        var (attempt, task) = context.Value;
        await RecordUsageAsync(db, attempt, task, succeeded.WorkerId, succeeded.Usage, "succeeded", now, cancellationToken);
        var result = JsonSerializer.Serialize(new AttemptResult(succeeded.Outputs, succeeded.Metrics, succeeded.Facts, succeeded.UnknownWords), SpecJson.Options);
        var finished = await db.Attempts
            .Where(a => a.Id == attempt.Id && a.State == AttemptState.Claimed)
            .ExecuteUpdateAsync(set => set.SetProperty(a => a.State, AttemptState.Succeeded).SetProperty(a => a.FinishedAt, now).SetProperty(a => a.ReportedAt, succeeded.ReportedAt).SetProperty(a => a.ResultJson, result), cancellationToken);
        var won = finished == 1 && await db.Tasks
            .Where(t => t.Id == task.Id && t.CurrentAttemptId == attempt.Id && t.State == RenderTaskState.Running)
            .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Succeeded).SetProperty(t => t.Progress, 1.0).SetProperty(t => t.UpdatedAt, now), cancellationToken) == 1;
        if (won)
        {
            await ReleaseDependantsAsync(db, task.Id, now, cancellationToken);
            if (task.Kind == "assemble")
            {
                // The manifest is written before the commit: if the commit fails, the redelivered event rewrites it.
                await shotFinisher.SucceedAsync(db, task.ShotId, succeeded, now, cancellationToken);
            }
        }

        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        if (won)
        {
            dispatchSignal.Wake();
        }
    }

    public async Task FailedAsync(TaskFailed failed, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var context = await LoadAsync(db, failed.AttemptId, cancellationToken);
        if (context is null)
        {
            logger.LogWarning("TaskFailed for unknown attempt {AttemptId} ignored", failed.AttemptId);
            return;
        }

        var (attempt, task) = context.Value;
        await RecordUsageAsync(db, attempt, task, failed.WorkerId, failed.Usage, "failed", now, cancellationToken);
        var reason = $"{task.Key} ({failed.Classification}): {failed.Reason}";
        var finished = await db.Attempts
            .Where(a => a.Id == attempt.Id && a.State == AttemptState.Claimed)
            .ExecuteUpdateAsync(set => set.SetProperty(a => a.State, AttemptState.Failed).SetProperty(a => a.FinishedAt, now).SetProperty(a => a.ReportedAt, failed.ReportedAt).SetProperty(a => a.Error, reason), cancellationToken);
        var won = finished == 1 && await db.Tasks
            .Where(t => t.Id == task.Id && t.CurrentAttemptId == attempt.Id && t.State == RenderTaskState.Running)
            .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Failed).SetProperty(t => t.Error, reason).SetProperty(t => t.UpdatedAt, now), cancellationToken) == 1;
        if (won)
        {
            await shotFinisher.FailAsync(db, task.ShotId, reason, now, cancellationToken);
        }

        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    private static async Task<(Attempt Attempt, Entities.RenderTask Task)?> LoadAsync(FarmDbContext db, Guid attemptId, CancellationToken cancellationToken)
    {
        var attempt = await db.Attempts.AsNoTracking().SingleOrDefaultAsync(a => a.Id == attemptId, cancellationToken);
        if (attempt is null)
        {
            return null;
        }

        var task = await db.Tasks.AsNoTracking().SingleAsync(t => t.Id == attempt.TaskId, cancellationToken);
        return (attempt, task);
    }

    /// <summary>
    /// Bills the attempt once. A concurrent duplicate inserting the same attempt id violates the unique index; the
    /// consumer's retry then finds the row and skips.
    /// </summary>
    private async Task RecordUsageAsync(FarmDbContext db, Attempt attempt, Entities.RenderTask task, string workerId, DeviceUsage usage, string outcome, DateTime now, CancellationToken cancellationToken)
    {
        if (await db.Usage.AnyAsync(u => u.AttemptId == attempt.Id, cancellationToken))
        {
            return;
        }

        var price = options.Prices.For(usage.DeviceSku);
        var project = await db.Jobs.Where(j => j.Id == task.JobId).Select(j => j.Project).SingleAsync(cancellationToken);
        db.Usage.Add(new UsageRecord
        {
            AttemptId = attempt.Id,
            TaskId = task.Id,
            ShotId = task.ShotId,
            JobId = task.JobId,
            Project = project,
            WorkerId = workerId,
            DeviceSku = usage.DeviceSku,
            DeviceCount = usage.DeviceCount,
            DeviceSeconds = usage.DeviceSeconds,
            EnergyJoules = usage.EnergyEstimated ? CostCalculator.EstimatedJoules(usage.DeviceSeconds, price.RatedWatts) : usage.EnergyJoules,
            EnergyEstimated = usage.EnergyEstimated,
            DollarsPerHour = price.DollarsPerHour,
            Cost = CostCalculator.Cost(usage.DeviceSeconds, price.DollarsPerHour),
            Outcome = outcome,
            RecordedAt = now,
        });
        await db.SaveChangesAsync(cancellationToken);
    }

    private static async Task ReleaseDependantsAsync(FarmDbContext db, Guid taskId, DateTime now, CancellationToken cancellationToken)
    {
        var dependants = await db.TaskDependencies.Where(d => d.DependsOnTaskId == taskId).Select(d => d.TaskId).ToListAsync(cancellationToken);
        if (dependants.Count == 0)
        {
            return;
        }

        await db.Tasks.Where(t => dependants.Contains(t.Id) && t.State == RenderTaskState.Blocked)
            .ExecuteUpdateAsync(set => set.SetProperty(t => t.PendingDependencies, t => t.PendingDependencies - 1).SetProperty(t => t.UpdatedAt, now), cancellationToken);
        await db.Tasks.Where(t => dependants.Contains(t.Id) && t.State == RenderTaskState.Blocked && t.PendingDependencies == 0)
            .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Ready).SetProperty(t => t.ReadyAt, now), cancellationToken);
    }

    private static async Task UpsertWorkerAsync(FarmDbContext db, ClaimAttempt claim, DateTime now, CancellationToken cancellationToken)
    {
        var updated = await db.Workers.Where(w => w.Id == claim.WorkerId)
            .ExecuteUpdateAsync(set => set.SetProperty(w => w.LastSeenAt, now).SetProperty(w => w.Pool, claim.Pool).SetProperty(w => w.DeviceSku, claim.DeviceSku).SetProperty(w => w.DeviceCount, claim.DeviceCount).SetProperty(w => w.Hostname, claim.Hostname), cancellationToken);
        if (updated == 0)
        {
            db.Workers.Add(new Worker { Id = claim.WorkerId, Pool = claim.Pool, DeviceSku = claim.DeviceSku, DeviceCount = claim.DeviceCount, Hostname = claim.Hostname, FirstSeenAt = now, LastSeenAt = now });
            await db.SaveChangesAsync(cancellationToken);
        }
    }
}

/// <summary>What a succeeded attempt produced, kept on the attempt row for the manifest.</summary>
public sealed record AttemptResult(
    IReadOnlyList<string> Outputs,
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyDictionary<string, string> Facts,
    IReadOnlyList<string> UnknownWords);
