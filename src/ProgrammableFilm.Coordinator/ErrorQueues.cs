using Microsoft.Extensions.Logging;
using ProgrammableFilm.Messaging;
using RabbitMQ.Client;

namespace ProgrammableFilm.Coordinator;

/// <summary>Messages MassTransit moved to an <c>_error</c> queue after its retries ran out.</summary>
public sealed record ErrorQueueCount(string Queue, string ReplaysTo, uint Messages);

/// <summary>
/// Watches and replays the farm's <c>_error</c> queues on RabbitMQ. The coordinator's consumers retry long enough to
/// ride out a database outage, so a message should never land there; if one does, operators see the count in the
/// API and the logs and can send the messages back to their queue (every consumer is idempotent).
/// </summary>
public sealed class ErrorQueues(BusOptions busOptions, CoordinatorOptions options, ILogger<ErrorQueues> logger)
{
    /// <summary>The farm's queues whose error queues are watched.</summary>
    public IReadOnlyList<string> Queues =>
    [
        busOptions.ClaimQueue,
        busOptions.HeartbeatQueue,
        $"{busOptions.Prefix}task-succeeded",
        $"{busOptions.Prefix}task-failed",
        $"{busOptions.Prefix}task-progressed",
        busOptions.RenderQueue(options.Pool),
    ];

    /// <summary>Counts per error queue; empty in embedded mode (the in-memory transport has no error queues to watch).</summary>
    public async Task<IReadOnlyList<ErrorQueueCount>> CountAsync(CancellationToken cancellationToken)
    {
        if (busOptions.RabbitMqUri is null)
        {
            return [];
        }

        await using var connection = await Connect(cancellationToken);
        var ready = await BrokerQueues.ReadyMessagesAsync(connection, [.. Queues.Select(queue => $"{queue}_error")], cancellationToken);
        return [.. Queues.Select(queue => new ErrorQueueCount($"{queue}_error", queue, ready[$"{queue}_error"]))];
    }

    /// <summary>Logs every non-empty error queue with the command that replays it (a Hangfire recurring job).</summary>
    public async Task WatchAsync(CancellationToken cancellationToken)
    {
        foreach (var count in await CountAsync(cancellationToken))
        {
            if (count.Messages > 0)
            {
                logger.LogError("{Count} message(s) in {Queue}; once the cause is fixed, replay them with POST /api/farm/error-queues/{Queue}/replay on the API", count.Messages, count.Queue, count.Queue);
            }
        }
    }

    /// <summary>
    /// Moves every message of an error queue back to the queue it failed on; returns how many. Each is published
    /// before it is acknowledged: a crash in between leaves it in both, and the consumer's idempotency absorbs that.
    /// </summary>
    public async Task<int?> ReplayAsync(string errorQueue, CancellationToken cancellationToken)
    {
        var target = Queues.FirstOrDefault(q => string.Equals($"{q}_error", errorQueue, StringComparison.Ordinal));
        if (busOptions.RabbitMqUri is null || target is null)
        {
            return null;
        }

        await using var connection = await Connect(cancellationToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        var moved = 0;
        while (await channel.BasicGetAsync(errorQueue, autoAck: false, cancellationToken) is { } message)
        {
            await channel.BasicPublishAsync(string.Empty, target, mandatory: false, new BasicProperties(message.BasicProperties), message.Body, cancellationToken);
            await channel.BasicAckAsync(message.DeliveryTag, multiple: false, cancellationToken);
            moved++;
        }

        logger.LogWarning("Replayed {Count} message(s) from {ErrorQueue} to {Queue}", moved, errorQueue, target);
        return moved;
    }

    private Task<IConnection> Connect(CancellationToken cancellationToken) =>
        new ConnectionFactory { Uri = new Uri(busOptions.RabbitMqUri!), ClientProvidedName = "pfilm-error-queues" }.CreateConnectionAsync(cancellationToken);
}
