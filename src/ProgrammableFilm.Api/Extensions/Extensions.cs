using Hangfire;
using Hangfire.PostgreSql;
using MassTransit;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data;
using ProgrammableFilm.Messaging;
using ProgrammableFilm.ServiceDefaults;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Api.Extensions;

public static class Extensions
{
    /// <summary>The farm's coordinator and API: PostgreSQL, RabbitMQ, shared storage.</summary>
    public static void AddFarmServices(this IHostApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var busOptions = BusOptions.FromConfiguration(configuration);
        var storageRoot = configuration["Storage:Root"] ?? throw new InvalidOperationException("Storage:Root is not set (environment: Storage__Root).");
        builder.Services.AddSingleton(busOptions);
        var database = DatabaseOptions.FromConfiguration(configuration);
        builder.Services.AddCoordinator(database, CoordinatorOptions.FromConfiguration(configuration), new ShotStorage(storageRoot));
        builder.Services.AddFarmMaintenance(hangfire => hangfire.UsePostgreSqlStorage(
            postgres => postgres.UseNpgsqlConnection(database.ConnectionString),
            // A worker with nothing to do asks its queues again after this long (15 s by default): an enqueue in this
            // process wakes only one waiting worker, maybe one of another queue, so a webhook delivery or its retry
            // could wait that long. A query a second per idle worker is cheap. A lock left by a coordinator that died
            // holding it (a recurring job's, taken each time the job is triggered) is taken over after a minute, not
            // the default ten: until then that sweep (the lease sweep, the republishing of unclaimed attempts) does not run.
            new PostgreSqlStorageOptions { SchemaName = "hangfire", PrepareSchemaIfNecessary = true, QueuePollInterval = TimeSpan.FromSeconds(1), DistributedLockTimeout = TimeSpan.FromMinutes(1) }));
        builder.Services.AddMassTransit(bus =>
        {
            bus.AddCoordinatorConsumers();
            bus.UseFarmTransport(busOptions);
        });
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<DatabaseUnavailableHandler>();
        builder.Services.AddHealthChecks().AddFarmReadinessChecks(new FarmDependencies
        {
            PostgresConnectionString = database.ConnectionString,
            PendingMigrations = (services, cancellationToken) => services.GetRequiredService<DatabaseMigrator>().PendingAsync(cancellationToken),
            RabbitMqUri = busOptions.RabbitMqUri,
            StorageRoot = storageRoot,
        });
    }

    /// <summary>Hangfire's dashboard of the farm's sweeps, at <c>/hangfire</c>: local requests only (a browser sends no API key; use a port-forward).</summary>
    public static void MapMaintenanceDashboard(this WebApplication app) => app.UseHangfireDashboard("/hangfire");

    /// <summary>The explicit migration step: <c>ProgrammableFilm.Api migrate</c>.</summary>
    public static async Task MigrateDatabaseAsync(this WebApplication app)
    {
        var applied = await app.Services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
        app.Logger.LogInformation("Applied {Count} migration(s): {Migrations}", applied.Count, string.Join(", ", applied));
    }

    /// <summary>Refuses to serve on a schema older than the code, rather than failing on the first request.</summary>
    public static async Task RequireMigratedDatabaseAsync(this WebApplication app)
    {
        var pending = await app.Services.GetRequiredService<DatabaseMigrator>().PendingAsync(CancellationToken.None);
        if (pending.Count > 0)
        {
            throw new DatabaseNotReadyException($"The database lacks migration(s) {string.Join(", ", pending)}; run the migration step first: dotnet run --project src/ProgrammableFilm.Api -- migrate");
        }
    }
}

/// <summary>The database this process was pointed at cannot serve it yet (an operator's step is missing).</summary>
public sealed class DatabaseNotReadyException(string message) : Exception(message);
