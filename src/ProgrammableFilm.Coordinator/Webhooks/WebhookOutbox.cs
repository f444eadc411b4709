using System.Runtime.CompilerServices;
using System.Text.Json;
using Hangfire;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Webhooks;

namespace ProgrammableFilm.Coordinator.Webhooks;

/// <summary>What every delivery POSTs: <see cref="Id"/> is the delivery's, the same on every attempt (receivers dedupe on it).</summary>
public sealed record WebhookBody(Guid Id, string Event, string Project, DateTime CreatedAt, JsonElement Data);

/// <summary>
/// The one way to announce an event to a project's webhooks. <see cref="EnqueueAsync"/> writes a delivery row per
/// subscribed webhook in the caller's transaction (an outbox: the announcement commits or rolls back with the change
/// it announces), unique on (subscription, event key), so an event handled twice is delivered once. The Hangfire job
/// that sends it is enqueued when that transaction commits; should the process die in between, the sweep enqueues it.
/// </summary>
public sealed class WebhookOutbox(IServiceProvider services, TimeProvider time, ILogger<WebhookOutbox> logger)
{
    private readonly ConditionalWeakTable<DbContext, List<Guid>> _uncommitted = new();

    /// <summary>Whether any live webhook of the project subscribes to the event: callers skip building a payload nobody receives.</summary>
    public static async Task<bool> SubscribedAsync(FarmDbContext db, string project, string eventName, CancellationToken cancellationToken) =>
        (await db.WebhookSubscriptions.AsNoTracking().Where(s => s.Project == project && s.DeletedAt == null).Select(s => s.Events).ToListAsync(cancellationToken))
            .Any(events => events.Split(',').Contains(eventName, StringComparer.Ordinal));

    /// <summary>
    /// Announces <paramref name="eventName"/> (one of <see cref="WebhookEvents.All"/>) to the project's webhooks that
    /// subscribe to it, with <paramref name="data"/> as the body's <c>data</c>. <paramref name="eventKey"/> names this
    /// occurrence (<c>job.failed:{job}:{finished at}</c>, <c>budget.soft:{project}:{budget version}</c>): a second call
    /// with the same key adds nothing. Saves through <paramref name="db"/> (with whatever else it tracks); returns the
    /// number of deliveries written.
    /// </summary>
    public async Task<int> EnqueueAsync(FarmDbContext db, string project, string eventName, object data, string eventKey, CancellationToken cancellationToken)
    {
        if (!WebhookEvents.All.Contains(eventName, StringComparer.Ordinal))
        {
            throw new ArgumentException($"'{eventName}' is not a webhook event ({string.Join(", ", WebhookEvents.All)})", nameof(eventName));
        }

        var subscriptions = (await db.WebhookSubscriptions.AsNoTracking().Where(s => s.Project == project && s.DeletedAt == null)
                .Select(s => new { s.Id, s.Events }).ToListAsync(cancellationToken))
            .Where(s => s.Events.Split(',').Contains(eventName, StringComparer.Ordinal))
            .Select(s => s.Id)
            .ToList();
        if (subscriptions.Count == 0)
        {
            return 0;
        }

        var delivered = await db.WebhookDeliveries.Where(d => subscriptions.Contains(d.SubscriptionId) && d.EventKey == eventKey).Select(d => d.SubscriptionId).ToListAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        var element = JsonSerializer.SerializeToElement(data, data.GetType(), SpecJson.Compact);
        var created = new List<Guid>();
        foreach (var subscription in subscriptions.Except(delivered))
        {
            var id = Guid.CreateVersion7();
            db.WebhookDeliveries.Add(new WebhookDelivery
            {
                Id = id,
                SubscriptionId = subscription,
                Project = project,
                Event = eventName,
                EventKey = eventKey,
                Payload = JsonSerializer.Serialize(new WebhookBody(id, eventName, project, now, element), SpecJson.Compact),
                State = WebhookDeliveryState.Pending,
                NextAttemptAt = now,
                CreatedAt = now,
            });
            created.Add(id);
        }

        await db.SaveChangesAsync(cancellationToken);
        if (db.Database.CurrentTransaction is null)
        {
            Send(created);
        }
        else
        {
            lock (_uncommitted)
            {
                _uncommitted.GetOrCreateValue(db).AddRange(created);
            }
        }

        return created.Count;
    }

    /// <summary>Hands deliveries to Hangfire's <c>webhooks</c> queue. A failure here loses nothing: the rows are the truth and the sweep finds them.</summary>
    internal void Send(IEnumerable<Guid> deliveries)
    {
        if (services.GetService<IBackgroundJobClient>() is not { } jobs)
        {
            return;
        }

        foreach (var id in deliveries)
        {
            try
            {
                jobs.Enqueue<WebhookSender>(sender => sender.DeliverAsync(id, CancellationToken.None));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                logger.LogWarning(e, "Could not enqueue webhook delivery {Delivery}; the sweep will", id);
            }
        }
    }

    private void Ended(DbContext context, bool committed)
    {
        List<Guid>? pending;
        lock (_uncommitted)
        {
            if (!_uncommitted.TryGetValue(context, out pending))
            {
                return;
            }

            _uncommitted.Remove(context);
        }

        if (committed)
        {
            Send(pending);
        }
    }

    /// <summary>Sends a transaction's deliveries once it commits; forgets them when it rolls back.</summary>
    public sealed class CommitInterceptor(WebhookOutbox outbox) : DbTransactionInterceptor
    {
        public override void TransactionCommitted(System.Data.Common.DbTransaction transaction, TransactionEndEventData eventData) => End(eventData, committed: true);

        public override Task TransactionCommittedAsync(System.Data.Common.DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            End(eventData, committed: true);
            return Task.CompletedTask;
        }

        public override void TransactionRolledBack(System.Data.Common.DbTransaction transaction, TransactionEndEventData eventData) => End(eventData, committed: false);

        public override Task TransactionRolledBackAsync(System.Data.Common.DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            End(eventData, committed: false);
            return Task.CompletedTask;
        }

        private void End(TransactionEndEventData eventData, bool committed)
        {
            if (eventData.Context is { } context)
            {
                outbox.Ended(context, committed);
            }
        }
    }
}
