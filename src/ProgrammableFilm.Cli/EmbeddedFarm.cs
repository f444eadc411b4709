using Hangfire;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data;
using ProgrammableFilm.Messaging;
using ProgrammableFilm.ServiceDefaults;
using ProgrammableFilm.Storage;
using ProgrammableFilm.Worker;

namespace ProgrammableFilm.Cli;

/// <summary>
/// The whole farm in one process: the coordinator on SQLite, MassTransit's in-memory transport and in-process
/// workers, writing to a local folder. The same components as the farm, composed differently.
/// </summary>
public static class EmbeddedFarm
{
    /// <param name="diffusionEngine">The in-process workers' <c>diffusion</c> implementation: <c>native</c>, <c>torch</c> or <c>auto</c> (see <see cref="WorkerOptions.DiffusionEngine"/>).</param>
    public static async Task<IHost> StartAsync(string outputFolder, int workerSlots, CancellationToken cancellationToken, string diffusionEngine = "auto")
    {
        Directory.CreateDirectory(outputFolder);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Error);

        // Traces and metrics of a local render go to an OpenTelemetry collector when OTEL_EXPORTER_OTLP_ENDPOINT is
        // set; no HTTP listener here (no health or scrape endpoint in embedded mode).
        builder.Configuration.AddInMemoryCollection(Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Where(variable => ((string)variable.Key).StartsWith("OTEL_", StringComparison.Ordinal))
            .Select(variable => KeyValuePair.Create((string)variable.Key, (string?)variable.Value)));
        builder.AddServiceDefaults("pfilm-embedded");
        var storage = new ShotStorage(outputFolder);
        var busOptions = new BusOptions();
        var workerOptions = new WorkerOptions { WorkerId = $"embedded-{Environment.ProcessId}", Slots = workerSlots, DeviceCount = Math.Max(1, Environment.ProcessorCount / workerSlots), DiffusionEngine = diffusionEngine };
        builder.Services.AddSingleton(busOptions);
        builder.Services.AddCoordinator(DatabaseOptions.Sqlite(Path.Combine(storage.Root, "pfilm.db")), new CoordinatorOptions { PollInterval = TimeSpan.FromMilliseconds(250) }, storage);
        builder.Services.AddFarmMaintenance(hangfire => hangfire.UseInMemoryStorage());
        builder.Services.AddRenderWorker(workerOptions, storage);
        builder.Services.AddMassTransit(bus =>
        {
            bus.AddCoordinatorConsumers();
            bus.AddRenderWorkerConsumer(workerOptions, busOptions);
            bus.UseFarmTransport(busOptions);
        });

        var host = builder.Build();

        // The explicit migration step, before anything that uses the database starts.
        await host.Services.GetRequiredService<DatabaseMigrator>().MigrateAsync(cancellationToken);
        await host.StartAsync(cancellationToken);
        return host;
    }
}
