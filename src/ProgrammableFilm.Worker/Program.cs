using MassTransit;
using ProgrammableFilm.Messaging;
using ProgrammableFilm.Storage;
using ProgrammableFilm.Worker;

var builder = Host.CreateApplicationBuilder(args);
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
