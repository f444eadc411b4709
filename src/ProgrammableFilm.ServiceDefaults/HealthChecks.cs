using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using RabbitMQ.Client;

namespace ProgrammableFilm.ServiceDefaults;

/// <summary>Ready when the database holds every migration the code knows.</summary>
internal sealed class MigrationsHealthCheck(IServiceProvider services, Func<IServiceProvider, CancellationToken, Task<IReadOnlyList<string>>> pending) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var missing = await pending(services, cancellationToken);
            return missing.Count == 0
                ? HealthCheckResult.Healthy("every migration is applied")
                : HealthCheckResult.Unhealthy($"migration(s) not applied: {string.Join(", ", missing)}");
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("cannot read the applied migrations", e);
        }
    }
}

/// <summary>
/// Ready when a file can be created, written and deleted in the storage root (a missing or read-only volume, a full
/// disk or a permission change all fail it). The root itself is never created here: a missing mount must show.
/// </summary>
internal sealed class StorageWritableHealthCheck(string root) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var probe = Path.Combine(root, $".health-{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            await File.WriteAllTextAsync(probe, "ok", cancellationToken);
            File.Delete(probe);
            return HealthCheckResult.Healthy($"{root} is writable");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return HealthCheckResult.Unhealthy($"{root} is not writable: {e.Message}");
        }
    }
}

/// <summary>
/// One long-lived connection for the RabbitMQ check and the worker's deaf-bus watchdog (a connection per probe would
/// churn the broker). The client recovers it after a broker restart by itself; a connection that could not be opened
/// at all is tried again on the next probe.
/// </summary>
public sealed class BrokerConnection(string uri) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IConnection? _connection;

    public async Task<IConnection> GetAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_connection is null)
            {
                var factory = new ConnectionFactory
                {
                    Uri = new Uri(uri),
                    ClientProvidedName = $"pfilm-health-{Environment.MachineName}",
                    AutomaticRecoveryEnabled = true,
                    NetworkRecoveryInterval = TimeSpan.FromSeconds(2),
                    RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
                };
                _connection = await factory.CreateConnectionAsync(cancellationToken);
            }

            return _connection;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }

        _gate.Dispose();
    }
}

/// <summary>Writes a health report as JSON: the overall status and each check's status and description.</summary>
internal static class HealthReportWriter
{
    public static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        var body = new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(
                entry => entry.Key,
                entry => new { status = entry.Value.Status.ToString(), description = entry.Value.Description ?? entry.Value.Exception?.Message, duration = entry.Value.Duration.TotalMilliseconds }),
        };
        return context.Response.WriteAsync(JsonSerializer.Serialize(body), context.RequestAborted);
    }
}
