using System.Diagnostics;
using Npgsql;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace ProgrammableFilm.Bench.Farm;

/// <summary>
/// What the farm's parts can do at most on this machine, measured in the same script as the farm: persistent RabbitMQ
/// messages published with confirms and consumed with acknowledgements, and durable one-row PostgreSQL transitions
/// (one UPDATE per commit) from several connections at once.
/// </summary>
public static class RawLimits
{
    /// <summary>
    /// CPU milliseconds the work of one throughput task takes with no farm around it: a 64×64 procedural frame rendered
    /// and PNG-encoded, on one thread (two cores can do no more than 2,000 ÷ this tasks a second, farm or not).
    /// </summary>
    public static async Task<double> EngineMillisecondsPerTaskAsync(int tasks)
    {
        var engine = new ProgrammableFilm.Engine.Procedural.ProceduralEngine();
        async Task RenderOneAsync(int frame)
        {
            var result = await engine.RenderAsync(
                new ProgrammableFilm.Engine.RenderRequest { Prompt = "a red ball rolling in the desert", Width = 64, Height = 64, Steps = 1, Guidance = 0, Seed = 7, TotalFrames = tasks, FrameIndices = [frame] },
                null,
                CancellationToken.None);
            using var png = new MemoryStream();
            ProgrammableFilm.Engine.Imaging.Png.Write(result.Frames[0].Image, png);
        }

        for (var i = 0; i < 50; i++)
        {
            await RenderOneAsync(i);
        }

        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        for (var i = 0; i < tasks; i++)
        {
            await RenderOneAsync(i);
        }

        return (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / tasks;
    }

    public static async Task<double> RabbitMqMessagesPerSecondAsync(string uri, int messages)
    {
        var factory = new ConnectionFactory { Uri = new Uri(uri) };
        await using var connection = await factory.CreateConnectionAsync();
        await using var publisher = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        await using var consumerChannel = await connection.CreateChannelAsync();
        var queue = $"bench-raw-{Guid.NewGuid().ToString("N")[..8]}";
        await publisher.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: true);
        await consumerChannel.BasicQosAsync(0, 100, false);
        var received = 0;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var consumer = new AsyncEventingBasicConsumer(consumerChannel);
        consumer.ReceivedAsync += async (_, delivery) =>
        {
            await consumerChannel.BasicAckAsync(delivery.DeliveryTag, multiple: false);
            if (Interlocked.Increment(ref received) == messages)
            {
                done.TrySetResult();
            }
        };
        await consumerChannel.BasicConsumeAsync(queue, autoAck: false, consumer);
        var body = new byte[600];
        var properties = new BasicProperties { Persistent = true };
        var started = Stopwatch.GetTimestamp();
        // Many publishes in flight, as the farm's parallel sends are: each awaits its own confirm.
        const int InFlight = 64;
        var pending = new List<Task>(InFlight);
        for (var i = 0; i < messages; i++)
        {
            pending.Add(publisher.BasicPublishAsync("", queue, mandatory: false, properties, body).AsTask());
            if (pending.Count == InFlight)
            {
                await Task.WhenAll(pending);
                pending.Clear();
            }
        }

        await Task.WhenAll(pending);
        await done.Task.WaitAsync(TimeSpan.FromMinutes(2));
        return messages / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    public static async Task<double> PostgresTransitionsPerSecondAsync(string admin, int connections, TimeSpan duration)
    {
        var database = await Baselines.CreateDatabaseAsync(admin, "pfilm_bench_transitions");
        await using (var setup = new NpgsqlConnection(database))
        {
            await setup.OpenAsync();
            await new NpgsqlCommand("CREATE TABLE t (id int PRIMARY KEY, state text NOT NULL); INSERT INTO t SELECT g, 'Ready' FROM generate_series(1, 100000) AS g;", setup).ExecuteNonQueryAsync();
        }

        var next = 0;
        var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var started = Stopwatch.GetTimestamp();
        var counts = await Task.WhenAll(Enumerable.Range(0, connections).Select(async _ =>
        {
            await using var connection = new NpgsqlConnection(database);
            await connection.OpenAsync();
            var done = 0;
            while (Stopwatch.GetTimestamp() < stopAt)
            {
                var id = (Interlocked.Increment(ref next) % 100000) + 1;
                await using var transaction = await connection.BeginTransactionAsync();
                await using var command = new NpgsqlCommand("UPDATE t SET state = CASE state WHEN 'Ready' THEN 'Running' ELSE 'Ready' END WHERE id = $1", connection, transaction);
                command.Parameters.AddWithValue(id);
                await command.ExecuteNonQueryAsync();
                await transaction.CommitAsync();
                done++;
            }

            return done;
        }));
        return counts.Sum() / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }
}
