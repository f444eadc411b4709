using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Coordinator;

public enum ControlOutcome
{
    Done,
    NotFound,
    Conflict,
}

/// <summary>What a control request did; <see cref="Reason"/> says why it was refused.</summary>
public sealed record ControlResult(ControlOutcome Outcome, string? Reason = null)
{
    public static ControlResult Done { get; } = new(ControlOutcome.Done);

    public static ControlResult NotFound { get; } = new(ControlOutcome.NotFound);

    public static ControlResult Conflict(string reason) => new(ControlOutcome.Conflict, reason);
}

/// <summary>
/// Cancel, pause, resume and retry, by producers and CI. Each is one transaction that changes states only out of
/// the expected ones, so that a request racing a worker's report (or a second request) has one outcome. Running
/// attempts are not interrupted here: the next heartbeat of their worker tells it to stop between sampler steps.
/// </summary>
public sealed class JobControl(
    IDbContextFactory<FarmDbContext> contextFactory,
    ShotFinisher finisher,
    DispatchSignal dispatchSignal,
    TaskStatistics statistics,
    TimeProvider time,
    ILogger<JobControl> logger)
{
    private const int MaxControlAttempts = 6;

    private static readonly JobState[] Unfinished = [JobState.Queued, JobState.Running, JobState.Waiting, JobState.Planning];

    public Task<ControlResult> CancelJobAsync(Guid jobId, CancellationToken cancellationToken) =>
        InTransactionAsync(jobId, async (db, job, now) =>
        {
            if (!Unfinished.Contains(job.State))
            {
                return ControlResult.Conflict($"job {jobId} is {job.State}; only a planning, queued, waiting or running job can be cancelled");
            }

            await CancelTasksAsync(db, db.Tasks.Where(t => t.JobId == jobId), now, cancellationToken);
            await db.Shots.Where(s => s.JobId == jobId && (s.State == ShotState.Queued || s.State == ShotState.Running))
                .ExecuteUpdateAsync(set => set.SetProperty(s => s.State, ShotState.Cancelled).SetProperty(s => s.Error, "cancelled").SetProperty(s => s.FinishedAt, now), cancellationToken);
            await db.Jobs.Where(j => j.Id == jobId)
                .ExecuteUpdateAsync(set => set.SetProperty(j => j.State, JobState.Cancelled).SetProperty(j => j.Error, "cancelled by request").SetProperty(j => j.FinishedAt, now).SetProperty(j => j.Paused, false), cancellationToken);
            await finisher.OnJobFinishedAsync(db, jobId, JobState.Cancelled, now, cancellationToken);
            logger.LogInformation("Job {JobId} cancelled", jobId);
            return ControlResult.Done;
        }, cancellationToken);

    public async Task<ControlResult> CancelShotAsync(Guid shotId, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var jobId = await db.Shots.Where(s => s.Id == shotId).Select(s => (Guid?)s.JobId).SingleOrDefaultAsync(cancellationToken);
        if (jobId is null)
        {
            return ControlResult.NotFound;
        }

        return await InTransactionAsync(jobId.Value, async (db, job, now) =>
        {
            var shot = await db.Shots.AsNoTracking().SingleAsync(s => s.Id == shotId, cancellationToken);
            if (shot.State is not (ShotState.Queued or ShotState.Running))
            {
                return ControlResult.Conflict($"shot {shot.Name} is {shot.State}; only a queued or running shot can be cancelled");
            }

            // A task another live take reuses keeps running for it.
            var shared = db.TaskReuses.Where(r => db.Shots.Any(s => s.Id == r.ShotId && s.Id != shotId && (s.State == ShotState.Queued || s.State == ShotState.Running))).Select(r => r.TaskId);
            await CancelTasksAsync(db, db.Tasks.Where(t => t.ShotId == shotId && !shared.Contains(t.Id)), now, cancellationToken);
            await db.Shots.Where(s => s.Id == shotId)
                .ExecuteUpdateAsync(set => set.SetProperty(s => s.State, ShotState.Cancelled).SetProperty(s => s.Error, "cancelled").SetProperty(s => s.FinishedAt, now), cancellationToken);
            await finisher.FinishJobIfDoneAsync(db, jobId.Value, now, cancellationToken);
            logger.LogInformation("Shot {ShotName} of job {JobId} cancelled", shot.Name, jobId);
            return ControlResult.Done;
        }, cancellationToken);
    }

    public Task<ControlResult> PauseAsync(Guid jobId, CancellationToken cancellationToken) =>
        InTransactionAsync(jobId, async (db, job, now) =>
        {
            if (!Unfinished.Contains(job.State))
            {
                return ControlResult.Conflict($"job {jobId} is {job.State}; only an unfinished job can be paused");
            }

            await db.Jobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(set => set.SetProperty(j => j.Paused, true), cancellationToken);
            return ControlResult.Done;
        }, cancellationToken);

    public Task<ControlResult> ResumeAsync(Guid jobId, CancellationToken cancellationToken) =>
        InTransactionAsync(jobId, async (db, job, now) =>
        {
            if (!job.Paused)
            {
                return ControlResult.Conflict($"job {jobId} is not paused");
            }

            await db.Jobs.Where(j => j.Id == jobId).ExecuteUpdateAsync(set => set.SetProperty(j => j.Paused, false), cancellationToken);
            return ControlResult.Done;
        }, cancellationToken);

    /// <summary>
    /// Runs a failed or cancelled job again: only its unfinished tasks, with fresh retry allowances; frames that
    /// succeeded are kept. The job waits again if a job it depends on has not succeeded.
    /// </summary>
    public async Task<ControlResult> RetryAsync(Guid jobId, CancellationToken cancellationToken)
    {
        var runAgain = 0;
        var result = await InTransactionAsync(jobId, async (db, job, now) =>
        {
            if (job.State is not (JobState.Failed or JobState.Cancelled))
            {
                return ControlResult.Conflict($"job {jobId} is {job.State}; only a failed or cancelled job can be retried");
            }

            if (await db.Shots.AnyAsync(s => s.JobId == jobId && s.PlannedAt == null, cancellationToken))
            {
                return ControlResult.Conflict($"job {jobId} was cancelled before it was fully planned; submit its spec again");
            }

            // A task whose attempt a worker has not yet stopped (its heartbeat has not carried the cancel yet, or the
            // attempt waits for a slot there) runs on with that attempt: a new attempt beside it would be a second live
            // attempt of one task. Should the worker stop it after all, its cancelled report hands the task back.
            // Those attempts are locked first: a report (or the lease sweep) ends the attempt and then judges its
            // task, and one that judged it Cancelled just before this retry but commits just after would otherwise
            // leave it Running for an attempt that has ended, which nothing ever hands back. Locked, such an attempt is
            // either ended before the next statement looks (its task is run again below) or ends after this commit
            // (and its report finds the task Running and hands it back). SQLite runs one writer at a time.
            if (db.Database.IsNpgsql())
            {
                await db.Database.ExecuteSqlAsync($"""
                    SELECT attempt.id FROM attempts AS attempt JOIN tasks AS task ON task.current_attempt_id = attempt.id
                    WHERE task.job_id = {jobId} AND task.state = 'Cancelled' AND attempt.state = 'Claimed'
                    FOR UPDATE OF attempt
                    """, cancellationToken);
            }

            var resumed = await db.Tasks
                .Where(t => t.JobId == jobId && t.State == RenderTaskState.Cancelled && db.Attempts.Any(a => a.Id == t.CurrentAttemptId && a.State == AttemptState.Claimed))
                .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Running).SetProperty(t => t.Error, (string?)null).SetProperty(t => t.UpdatedAt, now), cancellationToken);

            // Set-based updates, not a load of the tasks: a cancelled job may hold a million. The first two count each
            // task's unfinished dependencies as they are before this retry, from the dependencies' side (the edges'
            // only index; both ends of an edge are tasks of the job); the third moves the tasks by that count.
            var again = db.Tasks.Where(t => t.JobId == jobId && (t.State == RenderTaskState.Failed || t.State == RenderTaskState.Cancelled));
            await again.ExecuteUpdateAsync(set => set.SetProperty(t => t.PendingDependencies, 0), cancellationToken);
            await db.Database.ExecuteSqlAsync($"""
                UPDATE tasks SET pending_dependencies = unfinished.count
                FROM (SELECT edge.task_id, CAST(count(*) AS integer) AS count
                      FROM tasks AS dependency JOIN task_dependencies AS edge ON edge.depends_on_task_id = dependency.id
                      WHERE dependency.job_id = {jobId} AND dependency.state <> 'Succeeded'
                      GROUP BY edge.task_id) AS unfinished
                WHERE tasks.id = unfinished.task_id AND tasks.state IN ('Failed', 'Cancelled')
                """, cancellationToken);
            var count = await again.ExecuteUpdateAsync(
                set => set.SetProperty(t => t.State, t => t.PendingDependencies == 0 ? RenderTaskState.Ready : RenderTaskState.Blocked)
                    .SetProperty(t => t.ReadyAt, t => t.PendingDependencies == 0 ? now : null)
                    .SetProperty(t => t.CurrentAttemptId, (Guid?)null)
                    .SetProperty(t => t.Failures, 0)
                    .SetProperty(t => t.NotBefore, (DateTime?)null)
                    .SetProperty(t => t.Progress, 0)
                    .SetProperty(t => t.Error, (string?)null)
                    .SetProperty(t => t.UpdatedAt, now),
                cancellationToken);
            await db.Shots.Where(s => s.JobId == jobId && (s.State == ShotState.Failed || s.State == ShotState.Cancelled))
                .ExecuteUpdateAsync(set => set.SetProperty(s => s.State, ShotState.Queued).SetProperty(s => s.Error, (string?)null).SetProperty(s => s.FinishedAt, (DateTime?)null), cancellationToken);
            await db.JobWorkerFailures.Where(f => f.JobId == jobId).ExecuteDeleteAsync(cancellationToken);
            var waits = await db.JobDependencies.AnyAsync(d => d.JobId == jobId, cancellationToken);
            await db.Jobs.Where(j => j.Id == jobId)
                .ExecuteUpdateAsync(
                    set => set.SetProperty(j => j.State, waits ? JobState.Waiting : resumed > 0 ? JobState.Running : JobState.Queued)
                        .SetProperty(j => j.Error, (string?)null)
                        .SetProperty(j => j.FinishedAt, (DateTime?)null)
                        .SetProperty(j => j.Paused, false),
                    cancellationToken);
            if (waits && !await ShotFinisher.ReleaseIfReadyAsync(db, jobId, cancellationToken))
            {
                var failedDependency = await db.JobDependencies.Where(d => d.JobId == jobId)
                    .Join(db.Jobs, d => d.DependsOnJobId, j => j.Id, (d, j) => new { j.Id, j.State })
                    .FirstOrDefaultAsync(j => j.State == JobState.Failed || j.State == JobState.Cancelled, cancellationToken);
                if (failedDependency is not null)
                {
                    await finisher.FailWaitingJobAsync(db, jobId, $"job {failedDependency.Id}, which it waits for, is {failedDependency.State}", now, cancellationToken);
                }
            }

            logger.LogInformation("Job {JobId} retried: {Tasks} task(s) run again, {Resumed} go on with the attempt still running", jobId, count, resumed);
            runAgain = count;
            return ControlResult.Done;
        }, cancellationToken);
        if (result.Outcome == ControlOutcome.Done)
        {
            statistics.Written(runAgain);
        }

        return result;
    }

    /// <summary>
    /// Cancels the tasks that have not ended: those not started at once, the running ones in the database only (their
    /// workers learn it from their next heartbeat and report the time spent).
    /// </summary>
    private static async Task CancelTasksAsync(FarmDbContext db, IQueryable<RenderTask> tasks, DateTime now, CancellationToken cancellationToken)
    {
        await ShotFinisher.CancelUnstartedAsync(db, tasks, "cancelled", now, cancellationToken);
        await tasks.Where(t => t.State == RenderTaskState.Running)
            .ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Cancelled).SetProperty(t => t.Error, "cancelled").SetProperty(t => t.UpdatedAt, now), cancellationToken);
    }

    private async Task<ControlResult> InTransactionAsync(Guid jobId, Func<FarmDbContext, Job, DateTime, Task<ControlResult>> change, CancellationToken cancellationToken)
    {
        // A control request takes the job's tasks and attempts in another order than the dispatcher and the event
        // handlers do, so PostgreSQL may abort it as a deadlock's victim (found by AccessTests cancelling a job as its
        // worker started; a heartbeat now renews a worker's hundreds of claimed-ahead attempts in one statement).
        // Nothing of it was committed: run the whole transaction again, after a short random pause so that it does not
        // meet the same transaction at the same rows again.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await InOneTransactionAsync(jobId, change, cancellationToken);
            }
            catch (Exception e) when (attempt < MaxControlAttempts && (e as Npgsql.PostgresException ?? e.InnerException as Npgsql.PostgresException)?.SqlState == Npgsql.PostgresErrorCodes.DeadlockDetected)
            {
                logger.LogInformation("Control request on job {JobId} was a deadlock's victim; running it again", jobId);
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(20, 50 * attempt)), cancellationToken);
            }
        }
    }

    private async Task<ControlResult> InOneTransactionAsync(Guid jobId, Func<FarmDbContext, Job, DateTime, Task<ControlResult>> change, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);

        // Serialises with the roll-up of the job's shots and with other control requests.
        await ShotFinisher.LockJobAsync(db, jobId, cancellationToken);
        var job = await db.Jobs.AsNoTracking().SingleOrDefaultAsync(j => j.Id == jobId, cancellationToken);
        if (job is null)
        {
            return ControlResult.NotFound;
        }

        var result = await change(db, job, now);
        if (result.Outcome != ControlOutcome.Done)
        {
            return result;
        }

        await transaction.CommitAsync(cancellationToken);
        dispatchSignal.Wake();
        return result;
    }
}
