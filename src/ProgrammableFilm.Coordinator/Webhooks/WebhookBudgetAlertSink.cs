using System.Text.Json.Serialization;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator.Money;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Webhooks;

namespace ProgrammableFilm.Coordinator.Webhooks;

/// <summary>
/// <c>budget.soft</c> and <c>budget.hard</c> webhooks, from the crossings <see cref="BudgetAlertRelay"/> hands on. The
/// relay tells a sink at least once; the alert's id keys the delivery, so a crossing told twice is sent once. A job's
/// own crossing goes to its project's subscriptions with <c>jobId</c> set (null for the project's budget).
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
            new BudgetCrossed(alert.Id, alert.Level, alert.JobId, alert.SpentUsd, alert.LimitUsd, alert.CrossedAt),
            $"budget-alert:{alert.Id}",
            cancellationToken);
    }
}

/// <summary>
/// A <c>budget.*</c> webhook's data. <see cref="JobId"/> is written even when null (the payloads otherwise leave nulls
/// out): a receiver tells a project's crossing from a job's by it, so it is always there.
/// </summary>
public sealed record BudgetCrossed(
    long AlertId,
    string Level,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] Guid? JobId,
    decimal SpentUsd,
    decimal LimitUsd,
    DateTime CrossedAt);
