using MassTransit;
using Microsoft.Extensions.Hosting;
using ProgrammableFilm.Messaging;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Worker;

/// <summary>A worker process: consumes its pool's queue and renders. The entry point lives in a namespace so that hosts referencing this project keep their own <c>Program</c>.</summary>
public static class WorkerProgram
{
    public static async Task Main(string[] args)
    {
        // Settings sit beside the binaries, wherever the process is started from.
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
        var workerOptions = WorkerOptions.FromConfiguration(builder.Configuration);
        var busOptions = BusOptions.FromConfiguration(builder.Configuration);
        var storageRoot = builder.Configuration["Storage:Root"] ?? throw new InvalidOperationException("Storage:Root is not set (environment: Storage__Root).");

        builder.Services.AddRenderWorker(workerOptions, new ShotStorage(storageRoot));
        builder.Services.AddMassTransit(bus =>
        {
            bus.AddRenderWorkerConsumer(workerOptions, busOptions);
            bus.UseFarmTransport(busOptions);
        });

        await builder.Build().RunAsync();
    }
}
