using System.Diagnostics;
using System.Text;
using Hangfire;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Webhooks;

namespace ProgrammableFilm.Coordinator.Webhooks;

/// <summary>
/// Sends webhook deliveries: Hangfire jobs on their own queue (<see cref="Queue"/>, served by its own workers, so a
/// slow receiver never delays the lease sweep). Retries are ours, not Hangfire's: each failed attempt is logged and
/// the next is scheduled after an exponential backoff, up to <see cref="WebhookSettings.MaxAttempts"/>.
/// Delivery is at least once: a process that dies after the receiver answered and before the attempt was recorded
/// sends it again (same body, same <c>PFilm-Delivery</c> id).
/// </summary>
[AutomaticRetry(Attempts = 0, OnAttemptsExceeded = AttemptsExceededAction.Delete)]
public sealed class WebhookSender(
    IDbContextFactory<FarmDbContext> contextFactory,
    WebhookHttp http,
    IBackgroundJobClient jobs,
    CoordinatorOptions options,
    TimeProvider time,
    ILogger<WebhookSender> logger)
{
    public const string Queue = "webhooks";

    /// <summary>A delivery this late (its job lost between commit and enqueue, or its process died mid-attempt) is enqueued again by the sweep.</summary>
    public static readonly TimeSpan SweepGrace = TimeSpan.FromSeconds(20);

    /// <summary>How early Hangfire may start a scheduled job: it stores the schedule in whole seconds.</summary>
    private static readonly TimeSpan ScheduleResolution = TimeSpan.FromSeconds(2);

    private const int MaxErrorLength = 500;

    private WebhookSettings Settings => options.Webhooks;

    /// <summary>One attempt of a delivery, if it is pending and due; then the next one is scheduled, or the delivery ends.</summary>
    /// <remarks>
    /// The queue is named by the attribute rather than at enqueue time: Hangfire applies it whenever the job becomes
    /// enqueued, a scheduled retry included, whereas PostgreSQL storage cannot store a queue with a scheduled job.
    /// </remarks>
    [Queue(Queue)]
    public async Task DeliverAsync(Guid deliveryId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);

        // Hangfire keeps a schedule to the whole second, so a retry can start up to a second before it is due: it
        // waits for that moment rather than find the delivery not due and leave it to the sweep.
        var dueAt = await db.WebhookDeliveries.Where(d => d.Id == deliveryId && d.State == WebhookDeliveryState.Pending).Select(d => (DateTime?)d.NextAttemptAt).SingleOrDefaultAsync(cancellationToken);
        if (dueAt is { } due && due > now && due - now <= ScheduleResolution)
        {
            await Task.Delay(due - now, time, cancellationToken);

            // A timer may end a few milliseconds early (it runs on the kernel's coarse clock), and the claim below would
            // then find the delivery not yet due.
            var afterDelay = time.GetUtcNow().UtcDateTime;
            now = afterDelay > due ? afterDelay : due;
        }

        // The claim: only one run attempts a delivery at a time. It moves the due time past this attempt's longest
        // run, so a duplicate job (the sweep's, or Hangfire's re-run after a crash) finds it not due and stops; if this
        // process dies mid-attempt, the delivery becomes due again then and the sweep picks it up.
        var leaseUntil = now + Settings.Timeout + Settings.Timeout + SweepGrace;
        var claimed = await db.WebhookDeliveries.Where(d => d.Id == deliveryId && d.State == WebhookDeliveryState.Pending && d.NextAttemptAt <= now)
            .ExecuteUpdateAsync(set => set.SetProperty(d => d.NextAttemptAt, leaseUntil), cancellationToken);
        if (claimed == 0)
        {
            return;
        }

        var delivery = await db.WebhookDeliveries.AsNoTracking().SingleAsync(d => d.Id == deliveryId, cancellationToken);
        var subscription = await db.WebhookSubscriptions.AsNoTracking().SingleAsync(s => s.Id == delivery.SubscriptionId, cancellationToken);
        if (subscription.DeletedAt is not null)
        {
            await db.WebhookDeliveries.Where(d => d.Id == deliveryId && d.State == WebhookDeliveryState.Pending)
                .ExecuteUpdateAsync(set => set.SetProperty(d => d.State, WebhookDeliveryState.Dropped).SetProperty(d => d.FinishedAt, now), cancellationToken);
            return;
        }

        var number = delivery.Attempts + 1;
        var (status, error, elapsed) = await PostAsync(subscription, delivery, cancellationToken);
        var finished = time.GetUtcNow().UtcDateTime;
        var succeeded = status is >= 200 and < 300;
        var state = succeeded ? WebhookDeliveryState.Succeeded : number >= Settings.MaxAttempts ? WebhookDeliveryState.Failed : WebhookDeliveryState.Pending;
        var backoff = Settings.BackoffBefore(number + 1);
        var next = state == WebhookDeliveryState.Pending ? finished + backoff : finished;

        // The attempt and the delivery's new state in one transaction, conditional on the attempt count: a run that
        // lost its claim (it outlived its lease) records nothing over the run that took over.
        await using (var transaction = await db.Database.BeginTransactionAsync(cancellationToken))
        {
            var recorded = await db.WebhookDeliveries.Where(d => d.Id == deliveryId && d.Attempts == number - 1 && d.State == WebhookDeliveryState.Pending)
                .ExecuteUpdateAsync(
                    set => set.SetProperty(d => d.Attempts, number)
                        .SetProperty(d => d.State, state)
                        .SetProperty(d => d.NextAttemptAt, next)
                        .SetProperty(d => d.FinishedAt, state == WebhookDeliveryState.Pending ? null : finished),
                    cancellationToken);
            if (recorded == 0)
            {
                return;
            }

            db.WebhookAttempts.Add(new WebhookAttempt
            {
                DeliveryId = deliveryId,
                Number = number,
                StartedAt = now,
                StatusCode = status,
                Error = error is null ? null : error[..Math.Min(error.Length, MaxErrorLength)],
                DurationMs = elapsed.TotalMilliseconds,
            });
            await db.SaveChangesAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
        }

        if (state == WebhookDeliveryState.Pending)
        {
            // Committed first: should this process die now, the delivery is due at `next` and the sweep sends it.
            jobs.Schedule<WebhookSender>(sender => sender.DeliverAsync(deliveryId, CancellationToken.None), backoff);
        }
        else if (state == WebhookDeliveryState.Failed)
        {
            logger.LogWarning("Webhook delivery {Delivery} ({Event}) to {Url} failed {Attempts} times; last: {Error}", deliveryId, delivery.Event, subscription.Url, number, error ?? $"HTTP {status}");
        }
    }

    /// <summary>
    /// Enqueues the deliveries that are overdue: their job was never enqueued (the process died after the commit), or
    /// their attempt's process died. Each is claimed before it is sent, so one enqueued twice is sent once.
    /// </summary>
    [Queue(Queue)]
    public async Task<int> SweepAsync(CancellationToken cancellationToken)
    {
        var overdue = time.GetUtcNow().UtcDateTime - SweepGrace;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var due = await db.WebhookDeliveries.AsNoTracking().Where(d => d.State == WebhookDeliveryState.Pending && d.NextAttemptAt <= overdue)
            .OrderBy(d => d.NextAttemptAt).Select(d => d.Id).Take(500).ToListAsync(cancellationToken);
        foreach (var id in due)
        {
            jobs.Enqueue<WebhookSender>(sender => sender.DeliverAsync(id, CancellationToken.None));
        }

        return due.Count;
    }

    private async Task<(int? Status, string? Error, TimeSpan Elapsed)> PostAsync(WebhookSubscription subscription, WebhookDelivery delivery, CancellationToken cancellationToken)
    {
        var body = Encoding.UTF8.GetBytes(delivery.Payload);
        using var request = new HttpRequestMessage(HttpMethod.Post, subscription.Url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.TryAddWithoutValidation(WebhookSignature.Header, WebhookSignature.Sign(subscription.Secret, time.GetUtcNow().ToUnixTimeSeconds(), body));
        request.Headers.TryAddWithoutValidation("PFilm-Event", delivery.Event);
        request.Headers.TryAddWithoutValidation("PFilm-Delivery", delivery.Id.ToString());
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Settings.Timeout);
        var clock = Stopwatch.StartNew();
        try
        {
            using var response = await http.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var status = (int)response.StatusCode;
            return (status, status is >= 200 and < 300 ? null : $"HTTP {status} {response.ReasonPhrase}", clock.Elapsed);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (null, $"no answer within {Settings.Timeout.TotalSeconds:0.#} s", clock.Elapsed);
        }
        catch (HttpRequestException e)
        {
            return (null, e.InnerException is WebhookTargetDeniedException denied ? $"refused: {denied.Message}" : (e.InnerException ?? e).Message, clock.Elapsed);
        }
    }
}
