using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.ServiceDefaults;
using ProgrammableFilm.Worker;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A worker whose bus went deaf after a broker restart (MassTransit's transport sometimes never reconnects) ends
/// itself for its supervisor to start it again; a worker whose bus consumes, or whose broker is away, waits.
/// </summary>
public sealed class DeafBusWatchdogTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(2);

    [Fact]
    public void The_count_starts_at_the_first_look_at_an_unconsumed_queue_and_any_other_look_starts_it_again()
    {
        var watch = new DeafBusWatch(TimeSpan.FromSeconds(60));
        var start = DateTimeOffset.UnixEpoch;
        Assert.False(watch.Deaf(start, consumed: false));
        Assert.False(watch.Deaf(start.AddSeconds(59), consumed: false));
        Assert.True(watch.Deaf(start.AddSeconds(60), consumed: false));

        Assert.False(watch.Deaf(start.AddSeconds(61), consumed: null));
        Assert.False(watch.Deaf(start.AddSeconds(62), consumed: false));
        Assert.False(watch.Deaf(start.AddSeconds(121), consumed: false));
        Assert.False(watch.Deaf(start.AddSeconds(122), consumed: true));
        Assert.False(watch.Deaf(start.AddSeconds(123), consumed: false));
        Assert.True(watch.Deaf(start.AddSeconds(183), consumed: false));
    }

    [Fact]
    public async Task A_worker_whose_bus_stopped_consuming_while_the_broker_answers_exits_with_75_and_one_whose_bus_consumes_stays()
    {
        var bus = Bus.Factory.CreateUsingRabbitMq(rabbit => rabbit.Host(new Uri(TestEnvironment.RabbitMq)));
        await bus.StartAsync();
        // The bus's own queue is declared for the first answer it waits for: a worker's first heartbeat, here one nobody takes.
        var heartbeats = bus.CreateRequestClient<WorkerHeartbeat>(new Uri($"queue:deaf-bus-{Guid.NewGuid():N}"), RequestTimeout.After(ms: 200));
        await Assert.ThrowsAsync<RequestTimeoutException>(() => heartbeats.GetResponse<HeartbeatAcknowledged>(new WorkerHeartbeat
        {
            WorkerId = "deaf", Pool = "cpu", DeviceSku = "cpu", DeviceCount = 1, Slots = 1, Hostname = "test", Attempts = [],
        }));
        var lifetime = new RecordingLifetime();
        await using var broker = new BrokerConnection(TestEnvironment.RabbitMq);
        using var watchdog = Watchdog(bus, broker, lifetime);
        try
        {
            await watchdog.StartAsync(CancellationToken.None);
            await Task.Delay(Limit * 2);
            Assert.False(lifetime.Stopped.IsCompleted, "the watchdog stopped a worker whose bus consumes its queue");

            // A stopped bus's queue is deleted with its connection, as a broker restart deletes it: nobody declares it again.
            await bus.StopAsync();
            await lifetime.Stopped.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(DeafBusWatchdog.DeafExitCode, Environment.ExitCode);
        }
        finally
        {
            Environment.ExitCode = 0;
            await watchdog.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_worker_whose_broker_does_not_answer_waits_for_its_bus_to_reconnect()
    {
        var bus = Bus.Factory.CreateUsingRabbitMq(rabbit => rabbit.Host(new Uri(TestEnvironment.RabbitMq)));
        var lifetime = new RecordingLifetime();
        var unreachable = new UriBuilder(TestEnvironment.RabbitMq) { Port = TestEnvironment.FreePort() }.Uri.ToString();
        await using var broker = new BrokerConnection(unreachable);
        using var watchdog = Watchdog(bus, broker, lifetime);
        await watchdog.StartAsync(CancellationToken.None);
        await Task.Delay(Limit * 3);
        await watchdog.StopAsync(CancellationToken.None);
        Assert.False(lifetime.Stopped.IsCompleted, "the watchdog stopped a worker whose broker is away");
    }

    private static DeafBusWatchdog Watchdog(IBus bus, BrokerConnection broker, IHostApplicationLifetime lifetime) => new(
        bus,
        broker,
        new WorkerOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(200), DeafBusLimit = Limit },
        lifetime,
        TimeProvider.System,
        NullLogger<DeafBusWatchdog>.Instance);

    private sealed class RecordingLifetime : IHostApplicationLifetime
    {
        private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Stopped => _stopped.Task;

        public CancellationToken ApplicationStarted => CancellationToken.None;

        public CancellationToken ApplicationStopping => CancellationToken.None;

        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void StopApplication() => _stopped.TrySetResult();
    }
}
