namespace ProgrammableFilm.Data.Entities;

/// <summary>A project's webhook: where to POST which events, and the secret their signatures are made with.</summary>
public sealed class WebhookSubscription
{
    public Guid Id { get; set; }

    public required string Project { get; set; }

    public required string Url { get; set; }

    /// <summary>The subscribed event names, comma-separated.</summary>
    public required string Events { get; set; }

    /// <summary>
    /// The signing secret. Kept as given, not hashed: signing each delivery needs it (as Stripe and GitHub keep theirs);
    /// it is shown once, at creation, and never listed.
    /// </summary>
    public required string Secret { get; set; }

    public string? Description { get; set; }

    public DateTime CreatedAt { get; set; }

    public Guid? CreatedByKeyId { get; set; }

    /// <summary>Deleted subscriptions keep their row and their delivery log; nothing more is sent to them.</summary>
    public DateTime? DeletedAt { get; set; }
}

public enum WebhookDeliveryState
{
    Pending,
    Succeeded,

    /// <summary>Every attempt failed.</summary>
    Failed,

    /// <summary>The subscription was deleted, or its address became denied, before the delivery succeeded.</summary>
    Dropped,
}

/// <summary>
/// One event for one subscription: the outbox row, written in the transaction of the change it announces, unique on
/// (subscription, event key). The body is fixed here, so every attempt sends the same bytes (signed afresh).
/// </summary>
public sealed class WebhookDelivery
{
    public Guid Id { get; set; }

    public Guid SubscriptionId { get; set; }

    public required string Project { get; set; }

    public required string Event { get; set; }

    public required string EventKey { get; set; }

    public required string Payload { get; set; }

    public WebhookDeliveryState State { get; set; }

    public int Attempts { get; set; }

    /// <summary>When the next attempt is due; while an attempt runs, when it is presumed dead and may be run again.</summary>
    public DateTime NextAttemptAt { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime? FinishedAt { get; set; }
}

/// <summary>One POST of a delivery: the receiver's status code, or why there was none.</summary>
public sealed class WebhookAttempt
{
    public Guid DeliveryId { get; set; }

    public int Number { get; set; }

    public DateTime StartedAt { get; set; }

    public int? StatusCode { get; set; }

    public string? Error { get; set; }

    public double DurationMs { get; set; }
}
