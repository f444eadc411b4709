using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator.Money;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Webhooks;

namespace ProgrammableFilm.Coordinator.Webhooks;

/// <summary>
/// <c>budget.soft</c> and <c>budget.hard</c> webhooks, from the crossings <see cref="BudgetAlertRelay"/> hands on. The
/// relay tells a sink at least once; the alert's id keys the delivery, so a crossing told twice is sent once.
/// </summary>
public sealed class WebhookBudgetAlertSink(IDbContextFactory<FarmDbContext> contextFactory, WebhookOutbox outbox) : IBudgetAlertSink
{
    public async Task OnBudgetCrossedAsync(BudgetAlert alert, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await outbox.EnqueueAsync(
            db,
            alert.Project,
            alert.Level == "hard" ? WebhookEvents.BudgetHard : WebhookEvents.BudgetSoft,
            new { alertId = alert.Id, level = alert.Level, alert.SpentUsd, alert.LimitUsd, alert.CrossedAt },
            $"budget-alert:{alert.Id}",
            cancellationToken);
    }
}
