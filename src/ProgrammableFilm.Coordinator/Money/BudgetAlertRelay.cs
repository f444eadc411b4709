using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.Coordinator.Money;

/// <summary>
/// Told of every budget threshold crossing (<c>budget.soft</c>, <c>budget.hard</c>), a project's or a job's own. This is the hook for
/// notifications: register an implementation (<c>services.AddSingleton&lt;IBudgetAlertSink, …&gt;()</c>) and
/// <see cref="BudgetAlertRelay"/> calls it for each new <c>budget_alerts</c> row, oldest first.
/// </summary>
/// <remarks>
/// Delivery is at least once: an alert is marked relayed only after every sink returned, so a crash or a sink that
/// throws means the alert comes again on the next run. Use <see cref="BudgetAlert.Id"/> as the idempotency key.
/// </remarks>
public interface IBudgetAlertSink
{
    Task OnBudgetCrossedAsync(BudgetAlert alert, CancellationToken cancellationToken);
}

/// <summary>The sink that is always there: a warning in the coordinator's log.</summary>
public sealed class LoggingBudgetAlertSink(ILogger<LoggingBudgetAlertSink> logger) : IBudgetAlertSink
{
    public Task OnBudgetCrossedAsync(BudgetAlert alert, CancellationToken cancellationToken)
    {
        if (alert.JobId is { } job)
        {
            logger.LogWarning("Job {JobId} of project {Project} crossed its own {Level} budget threshold at {CrossedAt:O}: spent {SpentUsd} of {LimitUsd} USD", job, alert.Project, alert.Level, alert.CrossedAt, alert.SpentUsd, alert.LimitUsd);
        }
        else
        {
            logger.LogWarning("Project {Project} crossed its {Level} budget threshold at {CrossedAt:O}: spent {SpentUsd} of {LimitUsd} USD", alert.Project, alert.Level, alert.CrossedAt, alert.SpentUsd, alert.LimitUsd);
        }
        return Task.CompletedTask;
    }
}

/// <summary>
/// Hands new budget alerts to the sinks (a Hangfire recurring job: with several coordinators each run happens once).
/// Alerts are written by the ledger's trigger or by a budget change, in their own transactions; relaying them here,
/// after the fact, keeps a slow receiver out of billing.
/// </summary>
public sealed class BudgetAlertRelay(IDbContextFactory<FarmDbContext> contextFactory, IEnumerable<IBudgetAlertSink> sinks, TimeProvider time)
{
    private const int BatchSize = 100;

    public async Task<int> RelayAsync(CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var pending = await db.BudgetAlerts.AsNoTracking().Where(a => a.RelayedAt == null).OrderBy(a => a.Id).Take(BatchSize).ToListAsync(cancellationToken);
        foreach (var row in pending)
        {
            var alert = Budgets.ToAlert(row);
            foreach (var sink in sinks)
            {
                await sink.OnBudgetCrossedAsync(alert, cancellationToken);
            }

            // Marked after the sinks: a crash in between tells them again (at least once).
            var now = time.GetUtcNow().UtcDateTime;
            await db.BudgetAlerts.Where(a => a.Id == row.Id && a.RelayedAt == null)
                .ExecuteUpdateAsync(set => set.SetProperty(a => a.RelayedAt, (DateTime?)now), cancellationToken);
        }

        return pending.Count;
    }
}
