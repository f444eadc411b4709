using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Webhooks;

namespace ProgrammableFilm.Coordinator.Webhooks;

/// <summary>A webhook as listed: never its secret.</summary>
public sealed record WebhookInfo(Guid Id, string Url, IReadOnlyList<string> Events, string? Description, DateTime CreatedAt);

/// <summary>A new webhook and its signing secret, shown this once.</summary>
public sealed record CreatedWebhook(Guid Id, string Url, IReadOnlyList<string> Events, string? Description, DateTime CreatedAt, string Secret);

/// <summary>One event sent (or being sent) to a webhook, with every attempt.</summary>
public sealed record WebhookDeliveryInfo(Guid Id, string Event, string State, int Attempts, DateTime CreatedAt, DateTime? NextAttemptAt, DateTime? FinishedAt, IReadOnlyList<WebhookAttemptInfo> Log);

/// <summary>One POST: the receiver's status code, or the error when there was no answer.</summary>
public sealed record WebhookAttemptInfo(int Attempt, DateTime At, int? StatusCode, string? Error, double DurationMs);

/// <summary>The field-by-field reasons a webhook request was refused.</summary>
public sealed record WebhookRequestErrors(IReadOnlyDictionary<string, string[]> Errors);

/// <summary>A project's webhook subscriptions: made, listed, deleted, and their delivery logs.</summary>
public sealed class WebhookSubscriptions(IDbContextFactory<FarmDbContext> contextFactory, CoordinatorOptions options, TimeProvider time)
{
    public const int MaxPerProject = 20;
    private const int MaxDescriptionLength = 200;

    /// <summary>Checks everything (the URL's addresses included) before writing; on any error writes nothing.</summary>
    public async Task<(CreatedWebhook? Created, WebhookRequestErrors? Errors)> CreateAsync(string project, string? url, IReadOnlyList<string?>? events, string? description, Guid? keyId, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var targets = options.Webhooks.Targets;
        if (targets.UrlRefusal(url, out var uri) is { } refusal)
        {
            errors["url"] = [refusal];
        }
        else if (await AddressRefusalAsync(targets, uri!, cancellationToken) is { } addressRefusal)
        {
            errors["url"] = [addressRefusal];
        }

        if (events is not { Count: > 0 })
        {
            errors["events"] = [$"is required: one or more of {string.Join(", ", WebhookEvents.All)}"];
        }
        else
        {
            for (var i = 0; i < events.Count; i++)
            {
                if (events[i] is not { } name || !WebhookEvents.All.Contains(name, StringComparer.Ordinal))
                {
                    errors[$"events[{i}]"] = [$"'{events[i]}' is not an event; events are {string.Join(", ", WebhookEvents.All)}"];
                }
                else if (events.Take(i).Contains(name, StringComparer.Ordinal))
                {
                    errors[$"events[{i}]"] = [$"'{name}' is listed twice"];
                }
            }
        }

        var note = description?.Trim();
        if (note is not null && (note.Length > MaxDescriptionLength || note.Any(char.IsControl)))
        {
            errors["description"] = [$"must be at most {MaxDescriptionLength} printable characters"];
        }

        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        if (errors.Count == 0 && await db.WebhookSubscriptions.CountAsync(s => s.Project == project && s.DeletedAt == null, cancellationToken) >= MaxPerProject)
        {
            errors["url"] = [$"the project has {MaxPerProject} webhooks, the most it may have; delete one first"];
        }

        if (errors.Count > 0)
        {
            return (null, new WebhookRequestErrors(errors));
        }

        var subscription = new WebhookSubscription
        {
            Id = Guid.CreateVersion7(),
            Project = project,
            Url = uri!.AbsoluteUri,
            Events = string.Join(',', events!),
            Secret = "whsec_" + Base64Url(RandomNumberGenerator.GetBytes(32)),
            Description = string.IsNullOrEmpty(note) ? null : note,
            CreatedAt = time.GetUtcNow().UtcDateTime,
            CreatedByKeyId = keyId,
        };
        db.WebhookSubscriptions.Add(subscription);
        await db.SaveChangesAsync(cancellationToken);
        return (new CreatedWebhook(subscription.Id, subscription.Url, events!.OfType<string>().ToList(), subscription.Description, subscription.CreatedAt, subscription.Secret), null);
    }

    public async Task<IReadOnlyList<WebhookInfo>> ListAsync(string project, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var rows = await db.WebhookSubscriptions.AsNoTracking().Where(s => s.Project == project && s.DeletedAt == null).OrderBy(s => s.CreatedAt).ToListAsync(cancellationToken);
        return [.. rows.Select(Info)];
    }

    /// <summary>Stops the webhook at once: its pending deliveries are dropped; its row and delivery log stay.</summary>
    public async Task<WebhookInfo?> DeleteAsync(string project, Guid id, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var deleted = await db.WebhookSubscriptions.Where(s => s.Id == id && s.Project == project && s.DeletedAt == null)
            .ExecuteUpdateAsync(set => set.SetProperty(s => s.DeletedAt, now), cancellationToken);
        if (deleted == 0)
        {
            return null;
        }

        await db.WebhookDeliveries.Where(d => d.SubscriptionId == id && d.State == WebhookDeliveryState.Pending)
            .ExecuteUpdateAsync(set => set.SetProperty(d => d.State, WebhookDeliveryState.Dropped).SetProperty(d => d.FinishedAt, now), cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return Info(await db.WebhookSubscriptions.AsNoTracking().SingleAsync(s => s.Id == id, cancellationToken));
    }

    /// <summary>The webhook's deliveries, newest first, each with its attempts; null when the project has no such webhook (deleted ones keep their log).</summary>
    public async Task<IReadOnlyList<WebhookDeliveryInfo>?> DeliveriesAsync(string project, Guid id, int limit, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        if (!await db.WebhookSubscriptions.AnyAsync(s => s.Id == id && s.Project == project, cancellationToken))
        {
            return null;
        }

        var deliveries = await db.WebhookDeliveries.AsNoTracking().Where(d => d.SubscriptionId == id)
            .OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Id).Take(limit).ToListAsync(cancellationToken);
        var ids = deliveries.Select(d => d.Id).ToList();
        var attempts = (await db.WebhookAttempts.AsNoTracking().Where(a => ids.Contains(a.DeliveryId)).ToListAsync(cancellationToken))
            .ToLookup(a => a.DeliveryId);
        return [.. deliveries.Select(d => new WebhookDeliveryInfo(
            d.Id,
            d.Event,
            d.State.ToString().ToLowerInvariant(),
            d.Attempts,
            d.CreatedAt,
            d.State == WebhookDeliveryState.Pending ? d.NextAttemptAt : null,
            d.FinishedAt,
            [.. attempts[d.Id].OrderBy(a => a.Number).Select(a => new WebhookAttemptInfo(a.Number, a.StartedAt, a.StatusCode, a.Error, a.DurationMs))]))];
    }

    private static WebhookInfo Info(WebhookSubscription s) => new(s.Id, s.Url, s.Events.Split(','), s.Description, s.CreatedAt);

    /// <summary>Every address the host resolves to must be allowed: a name that also resolves to a denied address is refused.</summary>
    private static async Task<string?> AddressRefusalAsync(WebhookTargets targets, Uri uri, CancellationToken cancellationToken)
    {
        var host = uri.IdnHost.Trim('[', ']');
        if (IPAddress.TryParse(host, out _))
        {
            return null;
        }

        IPAddress[] addresses;
        try
        {
            addresses = await Dns.GetHostAddressesAsync(host, cancellationToken);
        }
        catch (SocketException e)
        {
            return $"{host} does not resolve ({e.SocketErrorCode})";
        }

        var denied = addresses.Select(targets.Refusal).OfType<string>().FirstOrDefault();
        return denied is not null ? $"is not allowed: {host} resolves to {denied}" : addresses.Length == 0 ? $"{host} has no address" : null;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
