using MassTransit;
using Microsoft.Extensions.Configuration;

namespace ProgrammableFilm.Messaging;

/// <summary>
/// How processes reach each other: the in-memory transport (embedded mode, one process) or RabbitMQ (farm mode).
/// <see cref="Prefix"/> namespaces every queue so that several farms can share one broker (the test suite does).
/// </summary>
public sealed record BusOptions
{
    /// <summary>An AMQP URI (<c>amqp://user:pass@host:port/vhost</c>); null selects the in-memory transport.</summary>
    public string? RabbitMqUri { get; init; }

    public string Prefix { get; init; } = "";

    /// <summary>Fault injection: every message sent or published is delivered twice (<see cref="Messaging.DuplicateDelivery"/>).</summary>
    public bool DuplicateDelivery { get; init; }

    public static BusOptions FromConfiguration(IConfiguration configuration) => new()
    {
        RabbitMqUri = configuration["RabbitMq:Uri"],
        Prefix = configuration["RabbitMq:Prefix"] ?? "",
        DuplicateDelivery = configuration.GetValue<bool>("Faults:DuplicateDelivery"),
    };

    /// <summary>The queue a pool's workers consume; the dispatcher sends <c>RenderBundle</c>s there.</summary>
    public string RenderQueue(string pool) => $"{Prefix}render-{pool}";

    /// <summary>The coordinator's claim queue; workers send <c>ClaimAttempts</c> requests straight to it.</summary>
    public string ClaimQueue => $"{Prefix}claim-attempt";

    /// <summary>The coordinator's heartbeat queue; workers send <c>WorkerHeartbeat</c> requests straight to it.</summary>
    public string HeartbeatQueue => $"{Prefix}worker-heartbeat";

    public IEndpointNameFormatter EndpointNames => new KebabCaseEndpointNameFormatter(Prefix, false);
}

public static class BusExtensions
{
    /// <summary>Selects the transport and binds every registered consumer to its kebab-case endpoint.</summary>
    public static void UseFarmTransport(this IBusRegistrationConfigurator bus, BusOptions options, Action<IBusRegistrationContext, IBusFactoryConfigurator>? configure = null)
    {
        bus.SetEndpointNameFormatter(options.EndpointNames);
        // MassTransit 8.4+ reports the bus's queues and host to its makers over HTTPS unless told not to: a studio's farm
        // sends nothing anywhere it was not asked to (and behind a closed network each report was a logged stack trace).
        bus.ConfigureUsageTelemetryOptions(telemetry => telemetry.Enabled = false);
        if (options.RabbitMqUri is null)
        {
            bus.UsingInMemory((context, transport) =>
            {
                if (options.DuplicateDelivery)
                {
                    transport.DeliverEveryMessageTwice(context);
                }

                configure?.Invoke(context, transport);
                transport.ConfigureEndpoints(context);
            });
            return;
        }

        bus.UsingRabbitMq((context, transport) =>
        {
            transport.Host(new Uri(options.RabbitMqUri));
            if (options.DuplicateDelivery)
            {
                transport.DeliverEveryMessageTwice(context);
            }

            configure?.Invoke(context, transport);
            transport.ConfigureEndpoints(context);
        });
    }
}
