using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ProgrammableFilm.ServiceDefaults;

/// <summary>
/// Host plumbing shared by every ProgrammableFilm process (the API/coordinator, the worker, the CLI's embedded farm),
/// so that a metric, a trace source or a probe is defined once: OpenTelemetry tracing and metrics (Prometheus scrape
/// endpoint, OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set) and the health endpoints.
/// </summary>
public static class Extensions
{
    /// <summary>The project's own meter and activity sources (the coordinator's farm metrics, the worker's spans).</summary>
    public const string TelemetryPrefix = "ProgrammableFilm";

    /// <summary>Tag of the checks that say the process lives (no dependency: a dead database must not restart pods).</summary>
    public const string LiveTag = "live";

    /// <summary>Tag of the checks that say the process can do its work (its dependencies answer).</summary>
    public const string ReadyTag = "ready";

    public const string LivePath = "/health/live";

    public const string ReadyPath = "/health/ready";

    public const string MetricsPath = "/metrics";

    /// <summary>
    /// OpenTelemetry (ASP.NET Core, HTTP client, runtime, Npgsql and MassTransit instrumentation plus the project's
    /// own sources) and the liveness check. <paramref name="serviceName"/> is the default <c>service.name</c>;
    /// <c>OTEL_SERVICE_NAME</c> overrides it.
    /// </summary>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder, string serviceName)
        where TBuilder : IHostApplicationBuilder
    {
        builder.ConfigureOpenTelemetry(serviceName);
        builder.Services.AddHealthChecks().AddCheck("self", () => HealthCheckResult.Healthy(), [LiveTag]);
        return builder;
    }

    private static void ConfigureOpenTelemetry(this IHostApplicationBuilder builder, string serviceName)
    {
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource
                .AddService(builder.Configuration["OTEL_SERVICE_NAME"] is { Length: > 0 } configured ? configured : serviceName, serviceInstanceId: $"{Environment.MachineName}-{Environment.ProcessId}"))
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter("Npgsql", "MassTransit", TelemetryPrefix + "*")
                .AddView(instrument => instrument.Meter.Name.StartsWith(TelemetryPrefix, StringComparison.Ordinal) && instrument.Unit == "s"
                    ? new ExplicitBucketHistogramConfiguration { Boundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] }
                    : null)
                .AddPrometheusExporter())
            .WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation(aspNet =>
                    // Probes and scrapes every few seconds would drown the traces that matter.
                    aspNet.Filter = context => !context.Request.Path.StartsWithSegments("/health", StringComparison.Ordinal)
                        && !context.Request.Path.StartsWithSegments(MetricsPath, StringComparison.Ordinal))
                .AddHttpClientInstrumentation()
                .AddNpgsql()
                .AddSource("MassTransit", TelemetryPrefix + "*"));

        // The standard variable, read by the exporter itself; with no collector listening, export fails quietly.
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            telemetry.UseOtlpExporter();
        }
    }

    /// <summary>
    /// The readiness checks for what this process depends on; null leaves a dependency out (a worker has no
    /// database). Each check answers within <paramref name="timeout"/> (5 s by default).
    /// </summary>
    public static IHealthChecksBuilder AddFarmReadinessChecks(this IHealthChecksBuilder checks, FarmDependencies dependencies, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(5);
        if (dependencies.PostgresConnectionString is { } postgres)
        {
            // Pooling off for the probe: after a database restart a pooled connection would fail one probe more.
            var probe = new NpgsqlConnectionStringBuilder(postgres) { Pooling = false, Timeout = (int)Math.Ceiling(limit.TotalSeconds) }.ConnectionString;
            checks.AddNpgSql(probe, name: "postgresql", tags: [ReadyTag], timeout: limit);
        }

        if (dependencies.PendingMigrations is { } pending)
        {
            checks.Add(new HealthCheckRegistration("migrations", services => new MigrationsHealthCheck(services, pending), HealthStatus.Unhealthy, [ReadyTag], limit));
        }

        if (dependencies.RabbitMqUri is { } rabbit)
        {
            checks.Services.AddSingleton(new BrokerConnection(rabbit));
            checks.AddRabbitMQ(services => services.GetRequiredService<BrokerConnection>().GetAsync(CancellationToken.None), name: "rabbitmq", tags: [ReadyTag], timeout: limit);
        }

        if (dependencies.StorageRoot is { } root)
        {
            checks.Add(new HealthCheckRegistration("storage", _ => new StorageWritableHealthCheck(root), HealthStatus.Unhealthy, [ReadyTag], limit));
        }

        return checks;
    }

    /// <summary>
    /// <c>/health/live</c> (the process answers), <c>/health/ready</c> (its dependencies answer; 503 otherwise, with
    /// each check's status in the JSON body) and the Prometheus scrape endpoint <c>/metrics</c>.
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        // Open to anyone who can reach the port, with or without an API key: kubelets probe and Prometheus scrapes
        // from inside the cluster, and these say nothing about any project.
        app.MapHealthChecks(LivePath, new HealthCheckOptions { Predicate = check => check.Tags.Contains(LiveTag), ResponseWriter = HealthReportWriter.WriteAsync }).AllowAnonymous();
        app.MapHealthChecks(ReadyPath, new HealthCheckOptions { Predicate = check => check.Tags.Contains(ReadyTag) && !check.Tags.Contains("masstransit"), ResponseWriter = HealthReportWriter.WriteAsync }).AllowAnonymous();
        app.MapPrometheusScrapingEndpoint(MetricsPath).AllowAnonymous();
        return app;
    }

    /// <summary>The worker's optional HTTP listener (<c>Worker:HttpUrls</c>); null when it is off.</summary>
    public static string? HttpListenerUrls(this IConfiguration configuration, string section) =>
        configuration[$"{section}:HttpUrls"] is { Length: > 0 } urls ? urls : null;
}

/// <summary>What a process needs to do its work; each non-null one gets a readiness check.</summary>
public sealed record FarmDependencies
{
    public string? PostgresConnectionString { get; init; }

    /// <summary>Returns the migrations the database lacks (the process refuses work on an older schema).</summary>
    public Func<IServiceProvider, CancellationToken, Task<IReadOnlyList<string>>>? PendingMigrations { get; init; }

    public string? RabbitMqUri { get; init; }

    /// <summary>The shared shot storage; ready only when a file can be written there.</summary>
    public string? StorageRoot { get; init; }
}
