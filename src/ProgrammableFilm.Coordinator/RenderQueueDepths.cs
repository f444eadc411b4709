using ProgrammableFilm.Messaging;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// How many messages each pool's render queue holds in the broker, ready and not yet delivered to a worker: what tells
/// a message that waits behind others from one that was lost.
/// </summary>
public sealed class RenderQueueDepths(BusOptions busOptions)
{
    /// <summary>
    /// Ready messages per pool; a queue the broker does not have holds none. Null in embedded mode: the in-memory
    /// transport cannot be asked (and loses messages only with the process).
    /// </summary>
    public async Task<IReadOnlyDictionary<string, uint>?> ReadyMessagesAsync(IReadOnlyCollection<string> pools, CancellationToken cancellationToken)
    {
        if (busOptions.RabbitMqUri is null)
        {
            return null;
        }

        await using var connection = await new ConnectionFactory { Uri = new Uri(busOptions.RabbitMqUri), ClientProvidedName = "pfilm-queue-depths" }.CreateConnectionAsync(cancellationToken);
        var ready = await BrokerQueues.ReadyMessagesAsync(connection, [.. pools.Select(busOptions.RenderQueue)], cancellationToken);
        return pools.ToDictionary(pool => pool, pool => ready[busOptions.RenderQueue(pool)], StringComparer.Ordinal);
    }
}

/// <summary>Queue depths as RabbitMQ reports them, for the farm's own queue watchers.</summary>
internal static class BrokerQueues
{
    /// <summary>Ready messages (not yet delivered to a consumer) per queue; a queue the broker does not have holds none.</summary>
    public static async Task<Dictionary<string, uint>> ReadyMessagesAsync(IConnection connection, IReadOnlyCollection<string> queues, CancellationToken cancellationToken)
    {
        var ready = new Dictionary<string, uint>(StringComparer.Ordinal);
        foreach (var queue in queues)
        {
            // A passive declare of a queue that does not exist closes its channel: one channel per queue.
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            try
            {
                ready[queue] = (await channel.QueueDeclarePassiveAsync(queue, cancellationToken)).MessageCount;
            }
            catch (OperationInterruptedException)
            {
                ready[queue] = 0;
            }
        }

        return ready;
    }
}
