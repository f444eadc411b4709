using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// Refreshes PostgreSQL's statistics of <c>tasks</c> after a write that made many tasks Ready at once (a big job
/// planned, a big job retried). Until autovacuum analyzes the table (up to a minute later, and only once a tenth of it
/// changed) the planner believes the Ready tasks are as few as they were, and the farm's small statements planned on
/// that belief read the whole Ready index: a dispatch pass's write took 0.4–0.6 s a statement with a million tasks
/// just planned (docs/performance.md, session 25), and a preview job waited behind it.
/// </summary>
public sealed class TaskStatistics(IDbContextFactory<FarmDbContext> contextFactory, ILogger<TaskStatistics> logger) : BackgroundService
{
    /// <summary>
    /// Fewer tasks than this hardly move the planner's estimates on a table big enough for a wrong plan to hurt;
    /// analyzing costs up to half a second of the database's time on a million rows.
    /// </summary>
    public const int AnalyzeAfter = 10_000;

    // One pending refresh covers any number of writes; the analyze that runs after the last of them sees them all.
    private readonly DispatchSignal _writes = new();

    /// <summary>A committed write changed the state of <paramref name="tasks"/> tasks.</summary>
    public void Written(int tasks)
    {
        if (tasks >= AnalyzeAfter)
        {
            _writes.Wake();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _writes.WaitAsync(Timeout.InfiniteTimeSpan, stoppingToken);
                await AnalyzeAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Autovacuum analyzes the table in the end; this only brings it forward.
                logger.LogWarning(e, "Analyzing the tasks table failed");
            }
        }
    }

    private async Task AnalyzeAsync(CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        if (!db.Database.IsNpgsql())
        {
            return;
        }

        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        await db.Database.ExecuteSqlRawAsync("ANALYZE tasks", cancellationToken);
        logger.LogInformation("Analyzed the tasks table after a bulk write in {Seconds:F2} s", System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
    }
}
