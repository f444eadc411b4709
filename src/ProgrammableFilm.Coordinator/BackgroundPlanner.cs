using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// Writes the task graphs of jobs submitted as <see cref="JobState.Planning"/>, one shot per transaction, and makes
/// the job dispatchable (Queued, or Waiting for its <c>after</c> jobs) in the transaction that writes its last shot.
/// The dispatcher takes tasks of Queued and Running jobs only, so nothing of a job is dispatched before all of it is
/// planned. A process that dies mid-shot rolls that shot back; the next pass (here or in another coordinator) plans
/// it again from <c>shots.planned_at</c>, which is also the shot's claim: the conditional update locks the row until
/// the shot is written, and a second planner waiting on it then finds it planned and moves on.
/// </summary>
public sealed class BackgroundPlanner(
    IDbContextFactory<FarmDbContext> contextFactory,
    ShotFinisher finisher,
    DispatchSignal dispatchSignal,
    TaskStatistics statistics,
    CoordinatorOptions options,
    TimeProvider time,
    ILogger<BackgroundPlanner> logger) : BackgroundService
{
    // A signal of its own (the same bounded one-slot channel the dispatcher wakes on).
    private readonly DispatchSignal _wakeups = new();

    /// <summary>A job was submitted for background planning: plan it now rather than at the next poll.</summary>
    public void Wake() => _wakeups.Wake();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                while (await PlanNextShotAsync(stoppingToken))
                {
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The shot's transaction rolled back: the next pass plans it again.
                logger.LogWarning(e, "Background planning failed; retrying after the poll interval");
            }

            try
            {
                await _wakeups.WaitAsync(options.PollInterval * 5, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Plans one unplanned shot of the oldest job in planning; false when there is none.</summary>
    public async Task<bool> PlanNextShotAsync(CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var next = await db.Shots.AsNoTracking()
            .Where(s => s.PlannedAt == null)
            .Join(db.Jobs.Where(j => j.State == JobState.Planning), s => s.JobId, j => j.Id, (s, j) => new { Shot = s, j.CreatedAt })
            .OrderBy(x => x.CreatedAt).ThenBy(x => x.Shot.Ordinal)
            .Select(x => x.Shot)
            .FirstOrDefaultAsync(cancellationToken);
        if (next is null)
        {
            return false;
        }

        var now = time.GetUtcNow().UtcDateTime;
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);

        // Serialises with cancel: a job cancelled while planning gets no more tasks.
        await ShotFinisher.LockJobAsync(db, next.JobId, cancellationToken);
        var job = await db.Jobs.AsNoTracking().SingleAsync(j => j.Id == next.JobId, cancellationToken);
        if (job.State != JobState.Planning
            || await db.Shots.Where(s => s.Id == next.Id && s.PlannedAt == null).ExecuteUpdateAsync(set => set.SetProperty(s => s.PlannedAt, now), cancellationToken) == 0)
        {
            return true;
        }

        var tasks = new List<RenderTask>();
        var edges = new List<TaskDependency>();
        JobSubmission.PlanShot(job, next, now, tasks, edges);
        await TaskGraphWriter.WriteAsync(db, tasks, edges, cancellationToken);
        if (job.TaskCount > options.StatusRollupAbove)
        {
            await JobReports.RecordPlannedCountsAsync(db, job.Id, tasks, now, cancellationToken);
        }

        var planned = !await db.Shots.AnyAsync(s => s.JobId == job.Id && s.PlannedAt == null, cancellationToken);
        if (planned)
        {
            await ReleaseAsync(db, job.Id, now, cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        logger.LogInformation("Planned shot {ShotName} of job {JobId} ({Tasks} tasks){Done}", next.Name, job.Id, tasks.Count, planned ? "; the job is planned" : "");
        if (planned)
        {
            dispatchSignal.Wake();
            statistics.Written(job.TaskCount);
        }

        return true;
    }

    /// <summary>The last shot is written: the job becomes Queued, or Waiting for its <c>after</c> jobs as a submission would.</summary>
    private async Task ReleaseAsync(FarmDbContext db, Guid jobId, DateTime now, CancellationToken cancellationToken)
    {
        var after = await db.JobDependencies.Where(d => d.JobId == jobId).Select(d => d.DependsOnJobId).ToListAsync(cancellationToken);
        foreach (var dependency in after)
        {
            // Locked so that a job it waits for cannot finish unseen between this check and the commit.
            await ShotFinisher.LockJobAsync(db, dependency, cancellationToken);
        }

        await db.Jobs.Where(j => j.Id == jobId && j.State == JobState.Planning)
            .ExecuteUpdateAsync(set => set.SetProperty(j => j.State, after.Count == 0 ? JobState.Queued : JobState.Waiting), cancellationToken);
        if (after.Count > 0 && !await ShotFinisher.ReleaseIfReadyAsync(db, jobId, cancellationToken)
            && await db.Jobs.Where(j => after.Contains(j.Id) && (j.State == JobState.Failed || j.State == JobState.Cancelled)).Select(j => new { j.Id, j.State }).FirstOrDefaultAsync(cancellationToken) is { } failed)
        {
            await finisher.FailWaitingJobAsync(db, jobId, $"job {failed.Id}, which it waits for, is {failed.State}", now, cancellationToken);
        }
    }
}
