using MassTransit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ProgrammableFilm.Messaging;
using ProgrammableFilm.ServiceDefaults;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Worker;

/// <summary>A worker process: consumes its pool's queue and renders. The entry point lives in a namespace so that hosts referencing this project keep their own <c>Program</c>.</summary>
public static class WorkerProgram
{
    public static async Task Main(string[] args)
    {
        // Settings sit beside the binaries, wherever the process is started from.
        var plain = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
        if (WorkerOptions.FromConfiguration(plain.Configuration).HttpUrls is not { } urls)
        {
            plain.AddWorkerProcess();
            await plain.Build().RunAsync();
            return;
        }

        // With Worker:HttpUrls set (the container images set it), a small listener serves /health/* and /metrics.
        ((IDisposable)plain.Configuration).Dispose();
        var web = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        web.WebHost.UseUrls(urls);
        web.AddWorkerProcess();
        var app = web.Build();
        app.MapDefaultEndpoints();
        await app.RunAsync();
    }

    /// <summary>The worker process's composition, the same with or without its HTTP listener.</summary>
    public static void AddWorkerProcess(this IHostApplicationBuilder builder)
    {
        var workerOptions = WorkerOptions.FromConfiguration(builder.Configuration);
        var busOptions = BusOptions.FromConfiguration(builder.Configuration);
        var storageRoot = builder.Configuration["Storage:Root"] ?? throw new InvalidOperationException("Storage:Root is not set (environment: Storage__Root).");

        builder.AddServiceDefaults("pfilm-worker");
        builder.Services.AddHealthChecks().AddFarmReadinessChecks(new FarmDependencies { RabbitMqUri = busOptions.RabbitMqUri, StorageRoot = storageRoot });
        builder.Services.AddRenderWorker(workerOptions, new ShotStorage(storageRoot));

        // Registered before the bus, whose hosted service starts after them: no message is taken before the model is in
        // and a task's path is compiled.
        builder.Services.AddHostedService<DiffusionWarmup>();
        builder.Services.AddHostedService<EncoderWarmup>();
        builder.Services.AddHostedService<WorkerRehearsal>();
        if (busOptions.RabbitMqUri is not null)
        {
            // Looks through the readiness check's connection (AddFarmReadinessChecks registers it with a broker).
            builder.Services.AddHostedService<DeafBusWatchdog>();
        }

        builder.Services.AddMassTransit(bus =>
        {
            bus.AddRenderWorkerConsumer(workerOptions, busOptions);
            bus.UseFarmTransport(busOptions);
        });
    }
}
