using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Diffusion;
using ProgrammableFilm.Engine.Procedural;
using ProgrammableFilm.Messaging;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Worker;

public static class WorkerExtensions
{
    /// <summary>The render worker: engines, the task runner and ffmpeg assembly. The same component runs in its own process or in-process.</summary>
    public static IServiceCollection AddRenderWorker(this IServiceCollection services, WorkerOptions options, ShotStorage storage)
    {
        services.AddSingleton<IRenderEngine>(_ => new ProceduralEngine());

        // The model loads on the first diffusion task, so a worker that only renders previz never pays for it.
        var device = WorkerDevice.Choose(options);
        services.AddSingleton(device);
        services.AddSingleton<IRenderEngine>(_ => device.CreateDiffusionEngine(options));
        services.AddAttemptRunning(options, storage);
        services.AddSingleton(_ => new Energy.EnergyAccount(Energy.EnergyMeterChoice.Open(options)));
        services.AddHostedService<HeartbeatService>();
        services.AddMetrics();
        services.AddHostedService<WorkerTelemetry>();
        return services;
    }

    /// <summary>
    /// What <see cref="RenderTaskConsumer"/> runs attempts with, engines and energy meter aside: the worker's own
    /// and <see cref="WorkerRehearsal"/>'s (on its throwaway folder) are built alike.
    /// </summary>
    internal static IServiceCollection AddAttemptRunning(this IServiceCollection services, WorkerOptions options, ShotStorage storage)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(options);
        services.AddSingleton(storage);
        services.AddSingleton<FfmpegAssembler>();
        services.AddSingleton<TaskRunner>();
        services.AddSingleton<RunningAttempts>();
        services.AddSingleton<SuccessReports>();
        services.AddSingleton(_ => new RenderSlots(options.Slots));
        return services;
    }

    /// <summary>Binds the worker's consumer to its pool's queue and its claim requests to the coordinator's queue.</summary>
    public static void AddRenderWorkerConsumer(this IBusRegistrationConfigurator bus, WorkerOptions options, BusOptions busOptions)
    {
        // A claim is answered in milliseconds, or within the coordinator's 25 s of retries while its database is
        // away; waiting longer only keeps the worker's slot idle (an unanswered claim's attempt is sent again).
        bus.AddRequestClient<Contracts.ClaimAttempts>(new Uri($"queue:{busOptions.ClaimQueue}"), RequestTimeout.After(s: 30));
        bus.AddRequestClient<Contracts.WorkerHeartbeat>(new Uri($"queue:{busOptions.HeartbeatQueue}"));
        bus.AddConsumer<RenderTaskConsumer>().Endpoint(endpoint =>
        {
            endpoint.Name = busOptions.RenderQueue(options.Pool);
            // Twice the slots: the next bundle of each slot is claimed while the current one renders, so a slot goes
            // from one attempt to the next without waiting for a claim's round trip.
            endpoint.ConcurrentMessageLimit = 2 * options.Slots;
            endpoint.PrefetchCount = 2 * options.Slots;
        });
    }
}
