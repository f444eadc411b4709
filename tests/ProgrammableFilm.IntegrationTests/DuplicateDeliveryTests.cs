using System.Collections.Concurrent;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Messaging;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The fault injection bench/faults.sh relies on: with <c>Faults:DuplicateDelivery</c> on, every send, publish, request
/// and response reaches its consumer twice, on RabbitMQ and in memory; with it off, once.
/// </summary>
public class DuplicateDeliveryTests
{
    [Theory]
    [InlineData("rabbitmq", true)]
    [InlineData("rabbitmq", false)]
    [InlineData("in-memory", true)]
    [InlineData("in-memory", false)]
    public async Task Every_sent_published_and_requested_message_is_delivered_twice_only_when_the_fault_is_on(string transport, bool duplicate)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["RabbitMq:Uri"] = transport == "rabbitmq" ? TestEnvironment.RabbitMq : null,
            ["RabbitMq:Prefix"] = $"dup{Guid.NewGuid().ToString("N")[..8]}-",
            ["Faults:DuplicateDelivery"] = duplicate ? "true" : "false",
        }).Build();
        var options = BusOptions.FromConfiguration(configuration);
        var counts = new DeliveryCounts();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(counts);
        services.AddMassTransit(bus =>
        {
            bus.AddConsumer<ProbeCommandConsumer>().Endpoint(e => e.Name = $"{options.Prefix}probe-command");
            bus.AddConsumer<ProbeEventConsumer>().Endpoint(e => e.Name = $"{options.Prefix}probe-event");
            bus.AddConsumer<ProbeRequestConsumer>().Endpoint(e => e.Name = $"{options.Prefix}probe-request");
            bus.AddRequestClient<ProbeRequest>(new Uri($"queue:{options.Prefix}probe-request"));
            bus.UseFarmTransport(options);
        });
        await using var provider = services.BuildServiceProvider();
        var control = provider.GetRequiredService<IBusControl>();
        using var startTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await control.StartAsync(startTimeout.Token);
        try
        {
            var sendEndpoint = await control.GetSendEndpoint(new Uri($"queue:{options.Prefix}probe-command"));
            await sendEndpoint.Send(new ProbeCommand(1));
            await control.Publish(new ProbeEvent(2));
            var response = await provider.GetRequiredService<IRequestClient<ProbeRequest>>().GetResponse<ProbeReply>(new ProbeRequest(3));

            var expected = duplicate ? 2 : 1;
            Assert.Equal(3, response.Message.Sequence);
            await counts.WaitForAsync(expected);

            // Nothing more arrives later: the copy is not itself copied.
            await Task.Delay(TimeSpan.FromSeconds(1));
            Assert.Equal((expected, expected, expected), (counts.Of("command"), counts.Of("event"), counts.Of("request")));
            Assert.Equal(duplicate, counts.SawCopyHeader);
            Assert.Equal(0, counts.UnanswerableRequests);
        }
        finally
        {
            await control.StopAsync();
        }
    }

    public sealed class DeliveryCounts
    {
        private readonly ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);
        private int _unanswerable;

        public bool SawCopyHeader { get; private set; }

        /// <summary>Requests arriving without the request id or response address a redelivered request keeps.</summary>
        public int UnanswerableRequests => _unanswerable;

        public int Of(string kind) => _counts.GetValueOrDefault(kind);

        public void Record(string kind, ConsumeContext context)
        {
            SawCopyHeader |= context.Headers.TryGetHeader(DuplicateDelivery.CopyHeader, out _);
            if (kind == "request" && (context.RequestId is null || context.ResponseAddress is null))
            {
                Interlocked.Increment(ref _unanswerable);
            }

            _counts.AddOrUpdate(kind, 1, (_, n) => n + 1);
        }

        public async Task WaitForAsync(int each)
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (Of("command") < each || Of("event") < each || Of("request") < each)
            {
                Assert.True(DateTime.UtcNow < deadline, $"deliveries: command {Of("command")}, event {Of("event")}, request {Of("request")}; expected {each} each");
                await Task.Delay(50);
            }
        }
    }

    public sealed class ProbeCommandConsumer(DeliveryCounts counts) : IConsumer<ProbeCommand>
    {
        public Task Consume(ConsumeContext<ProbeCommand> context)
        {
            counts.Record("command", context);
            return Task.CompletedTask;
        }
    }

    public sealed class ProbeEventConsumer(DeliveryCounts counts) : IConsumer<ProbeEvent>
    {
        public Task Consume(ConsumeContext<ProbeEvent> context)
        {
            counts.Record("event", context);
            return Task.CompletedTask;
        }
    }

    public sealed class ProbeRequestConsumer(DeliveryCounts counts) : IConsumer<ProbeRequest>
    {
        public Task Consume(ConsumeContext<ProbeRequest> context)
        {
            counts.Record("request", context);
            return context.RespondAsync(new ProbeReply(context.Message.Sequence));
        }
    }
}

public sealed record ProbeCommand(int Sequence);

public sealed record ProbeEvent(int Sequence);

public sealed record ProbeRequest(int Sequence);

public sealed record ProbeReply(int Sequence);
