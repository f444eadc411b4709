using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.ServiceDefaults;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace ProgrammableFilm.Worker;

/// <summary>
/// Ends the worker process when its bus has gone deaf: MassTransit's RabbitMQ transport sometimes never reconnects
/// after a broker restart (a message was being acknowledged as the connection dropped; MassTransit issues 2072, 5692,
/// 6095), and the worker then lives on without taking work or answering, its queued attempts waiting forever (seen
/// once in ten node restarts of <c>bench/faults.sh</c>). The sign is the bus's own queue, where every answer to this
/// worker arrives: a reconnected bus declares it again and consumes it. When the broker answers and that queue has had
/// no consumer for <see cref="WorkerOptions.DeafBusLimit"/> (twice MassTransit's longest wait between reconnects), the
/// worker exits with code 75 for its supervisor (Kubernetes, Compose, systemd) to start a fresh one; its attempts'
/// leases run out and they run again. A broker that is down, a coordinator or a database that is away, leave the queue
/// consumed and the worker waiting.
/// </summary>
public sealed class DeafBusWatchdog(IBus bus, BrokerConnection broker, WorkerOptions options, IHostApplicationLifetime lifetime, TimeProvider time, ILogger<DeafBusWatchdog> logger) : BackgroundService
{
    /// <summary>The exit code of a worker that ended itself because its bus went deaf (EX_TEMPFAIL: start it again).</summary>
    public const int DeafExitCode = 75;

    /// <summary>Looks at most this often: one passive declare, for every worker of a fleet.</summary>
    private static readonly TimeSpan LongestLookInterval = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.DeafBusLimit <= TimeSpan.Zero)
        {
            return;
        }

        var queue = bus.Address.Segments[^1];
        var watch = new DeafBusWatch(options.DeafBusLimit);
        using var timer = new PeriodicTimer(TimeSpan.FromTicks(Math.Min(LongestLookInterval.Ticks, options.DeafBusLimit.Ticks / 4)), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (watch.Deaf(time.GetUtcNow(), await QueueConsumedAsync(queue, stoppingToken)))
            {
                logger.LogCritical("The broker answers but this worker's queue {Queue} has had no consumer for {Seconds:F0} s: its bus did not reconnect. Exiting with code {Code} for the supervisor to start the worker again", queue, options.DeafBusLimit.TotalSeconds, DeafExitCode);
                Environment.ExitCode = DeafExitCode;
                lifetime.StopApplication();
                return;
            }
        }
    }

    /// <summary>Whether the queue has a consumer; null when the broker does not answer (then nothing can be told).</summary>
    private async Task<bool?> QueueConsumedAsync(string queue, CancellationToken cancellationToken)
    {
        try
        {
            await using var channel = await (await broker.GetAsync(cancellationToken)).CreateChannelAsync(cancellationToken: cancellationToken);
            try
            {
                return (await channel.QueueDeclarePassiveAsync(queue, cancellationToken)).ConsumerCount > 0;
            }
            catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
            {
                // Gone with the broker's restart and never declared again.
                return false;
            }
        }
        catch (Exception e) when (e is BrokerUnreachableException or ConnectFailureException or OperationInterruptedException or AlreadyClosedException or IOException or TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return null;
        }
    }
}

/// <summary>Counts how long a queue has been seen without a consumer while the broker answered.</summary>
public sealed class DeafBusWatch(TimeSpan limit)
{
    private DateTimeOffset? _deafSince;

    /// <summary>
    /// True once the queue has been seen unconsumed at every look for <c>limit</c>; a look at a consumed queue starts
    /// the count again, and so does one the broker did not answer (<paramref name="consumed"/> null: a broker that is
    /// away is MassTransit's to wait for).
    /// </summary>
    public bool Deaf(DateTimeOffset now, bool? consumed)
    {
        if (consumed is not false)
        {
            _deafSince = null;
            return false;
        }

        _deafSince ??= now;
        return now - _deafSince.Value >= limit;
    }
}
