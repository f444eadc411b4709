using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Messaging;
using Contract = ProgrammableFilm.Contracts;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// Database-first dispatch: picks Ready tasks in scheduling order (lane, then priority, then age), gives each a new
/// attempt in a committed transaction, and only then sends the <c>RenderTask</c>. The pool's queue is kept shallow
/// (two messages per live worker slot, at least <see cref="CoordinatorOptions.MaxQueuedPerPool"/>) so that the order
/// is decided here, not by the broker.
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

    /// <summary>Dispatches until the pool's queue is full or nothing is Ready; returns the number dispatched.</summary>
    public async Task<int> DispatchReadyAsync(CancellationToken cancellationToken)
    {
        var dispatched = 0;
        while (true)
        {
            await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
            // A few messages per live worker slot: enough that no slot waits for the next dispatch pass, few enough
            // that the order is still decided here rather than by the broker's FIFO.
            var now = time.GetUtcNow().UtcDateTime;
            var liveSince = now - options.LeaseDuration;
            var slots = await db.Workers.Where(w => w.Pool == options.Pool && w.LastSeenAt >= liveSince).SumAsync(w => w.Slots, cancellationToken);
            var queued = await db.Attempts.CountAsync(a => a.Pool == options.Pool && a.State == AttemptState.Queued, cancellationToken);
            var room = Math.Max(options.MaxQueuedPerPool, QueuedPerSlot * slots) - queued;
            if (room <= 0)
            {
                return dispatched;
            }

            // A task waits out its retry backoff; a paused, waiting or finished job gets no new attempts.
            var candidates = await (
                from task in db.Tasks
                join job in db.Jobs on task.JobId equals job.Id
                where task.State == RenderTaskState.Ready && (task.NotBefore == null || task.NotBefore <= now)
                    && (job.State == JobState.Queued || job.State == JobState.Running) && !job.Paused
                orderby task.Lane, task.Priority descending, task.CreatedAt, task.FirstFrame
                select task.Id)
                .Take(room)
                .ToListAsync(cancellationToken);
            if (candidates.Count == 0)
            {
                return dispatched;
            }

            // Crash point: the attempts are committed as Queued but may never be sent. RepublishUnclaimedAsync sends
            // them again later; the worker's claim makes a second delivery harmless. The sends go out together: each
            // waits for the broker's confirm, and one at a time that wait is the pass's cost.
            var messages = await CreateAttemptsAsync(candidates, cancellationToken);
            await Task.WhenAll(messages.Select(message => SendAsync(message, cancellationToken)));
            dispatched += messages.Count;
        }
    }

    /// <summary>
    /// Gives each candidate a new attempt, all in one transaction (commits are the scarce resource). A candidate that
    /// is no longer Ready (another dispatcher took it) is skipped.
    /// </summary>
    private async Task<List<Contract.RenderTask>> CreateAttemptsAsync(IReadOnlyList<Guid> candidates, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        var proposed = candidates.Select(taskId => (AttemptId: Guid.CreateVersion7(), TaskId: taskId)).ToList();
        var taken = await TakeReadyAsync(db, proposed, now, cancellationToken);

        var takenIds = taken.Select(t => t.TaskId).ToList();
        var rows = await (
            from task in db.Tasks
            join shot in db.Shots on task.ShotId equals shot.Id
            where takenIds.Contains(task.Id)
            select new { Task = task, Shot = shot })
            .AsNoTracking()
            .ToDictionaryAsync(row => row.Task.Id, cancellationToken);
        var messages = new List<Contract.RenderTask>(taken.Count);
        foreach (var (attemptId, taskId) in taken)
        {
            var row = rows[taskId];
            db.Attempts.Add(new Attempt
            {
                Id = attemptId,
                TaskId = taskId,
                Number = row.Task.AttemptCount,
                State = AttemptState.Queued,
                Pool = options.Pool,
                CreatedAt = now,
                PublishedAt = now,
            });
            messages.Add(ToMessage(attemptId, row.Task, row.Shot));
            metrics.Dispatched(row.Task, options.Pool, now);
        }

        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return messages;
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
            select new { AttemptId = attempt.Id, Task = task, Shot = shot })
            .AsNoTracking()
            .ToListAsync(cancellationToken);
        foreach (var item in stale)
        {
            logger.LogInformation("Attempt {AttemptId} unclaimed since {Since}; publishing it again", item.AttemptId, staleBefore);
            // Marked first: a send that fails is retried by a later sweep, and whoever sees the copy sees the mark.
            await db.Attempts.Where(a => a.Id == item.AttemptId && a.State == AttemptState.Queued)
                .ExecuteUpdateAsync(set => set.SetProperty(a => a.PublishedAt, now), cancellationToken);
            await SendAsync(ToMessage(item.AttemptId, item.Task, item.Shot), cancellationToken);
        }

        return stale.Count;
    }

    /// <summary>Sends one attempt in its own trace (an async method, so concurrent sends do not share a current span).</summary>
    private async Task SendAsync(Contract.RenderTask message, CancellationToken cancellationToken)
    {
        using var activity = FarmMetrics.StartDispatch(message);
        var endpoint = await bus.GetSendEndpoint(new Uri($"queue:{busOptions.RenderQueue(options.Pool)}"));
        await endpoint.Send(message, cancellationToken);
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
        Steps = shot.Steps,
        Guidance = shot.Guidance,
        Seed = shot.Seed,
        TotalFrames = shot.FrameCount,
        Frames = Enumerable.Range(task.FirstFrame, task.LastFrame - task.FirstFrame + 1).ToArray(),
        StartKeyframe = task.StartKeyframe,
        EndKeyframe = task.EndKeyframe,
        ShotFolder = shot.Folder,
        MaxFrameBatch = task.MaxFrameBatch,
        JobTraceParent = shot.TraceParent,
    };
}
