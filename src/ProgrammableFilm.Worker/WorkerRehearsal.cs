using System.Collections.Concurrent;
using System.Diagnostics;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Engine;
using ProgrammableFilm.Messaging;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Worker;

/// <summary>
/// Rehearses a task's whole path while the worker process starts, before its bus consumes anything: a four-frame shot
/// for each engine the worker offers (its keyframes, then the segment between them, then its assembly) goes through the
/// worker's own consumer, claim, task runner, frame writing, MP4 encoding and success reports, on an in-memory bus of
/// its own whose coordinator is a stand-in that grants every claim, in a throwaway folder. The worker compiles every
/// method fully optimised on its first call (see the project file); without the rehearsal a fresh worker's first batch
/// compiled about 600 methods (MassTransit's consume, request and publish pipes, the contracts' JSON, the consumer's and
/// the runner's state machines, PNG writing, the take's metrics) on the cores its renders share. Nothing of it reaches
/// the farm. A rehearsal that fails is logged and the worker starts anyway: its first tasks then compile their path.
/// </summary>
public sealed class WorkerRehearsal(IEnumerable<IRenderEngine> engines, WorkerOptions options, IHostApplicationLifetime lifetime, ILogger<WorkerRehearsal> logger) : IHostedService
{
    /// <summary>The rehearsal's frames: two keyframes and the segment between them, at the diffusion model's own size.</summary>
    private const int Frames = 4;

    private const int Size = 64;

    /// <summary>A rehearsal takes a second or two; a worker whose rehearsal hangs starts without it.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var offered = engines.Where(e => options.Engines.Contains(e.Name, StringComparer.Ordinal)).ToList();
        var started = Stopwatch.GetTimestamp();
        var compiledBefore = System.Runtime.JitInfo.GetCompiledMethodCount();
        var folder = Directory.CreateTempSubdirectory("pfilm-rehearsal-");
        using var patience = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        patience.CancelAfter(Patience);
        try
        {
            var (rehearsed, failures) = await RehearseAsync(offered, folder.FullName, patience.Token);
            foreach (var failure in failures)
            {
                logger.LogWarning("Rehearsal at start: {Failure}", failure);
            }

            logger.LogInformation(
                "Rehearsed a task's path ({Engines}: claim, render, assembly, report) in {Seconds:F2} s, compiling {Methods} methods before the first task",
                string.Join(", ", rehearsed),
                Stopwatch.GetElapsedTime(started).TotalSeconds,
                System.Runtime.JitInfo.GetCompiledMethodCount() - compiledBefore);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Rehearsal at start did not finish ({Reason}); the first tasks compile their own path", e.Message);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs the stages one bundle each, as the dispatcher would release them; returns the engines whose shot went through, and what failed.</summary>
    private async Task<(List<string> Rehearsed, List<string> Failures)> RehearseAsync(IReadOnlyList<IRenderEngine> offered, string folder, CancellationToken cancellationToken)
    {
        // MassTransit logs through an ambient (async-local) context that the worker's own bus set: the rehearsal's bus
        // says nothing (its "Bus started" would read as the worker's). The change ends with this method.
        LogContext.ConfigureCurrentLogContext(NullLoggerFactory.Instance);
        var rehearsalBus = new BusOptions { Prefix = "rehearsal-" };
        var outcomes = new RehearsalOutcomes();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(lifetime);
        services.AddSingleton(outcomes);
        services.AddSingleton(new Energy.EnergyAccount(null));
        foreach (var engine in offered)
        {
            // The worker's own instances (the diffusion model is loaded once); a container does not dispose instances it was given.
            services.AddSingleton(engine);
        }

        services.AddAttemptRunning(options, new ShotStorage(folder));
        services.AddMassTransit(bus =>
        {
            bus.AddRenderWorkerConsumer(options, rehearsalBus);
            bus.AddConsumer<StandInCoordinator>().Endpoint(endpoint => endpoint.Name = rehearsalBus.ClaimQueue);
            bus.UseFarmTransport(rehearsalBus);
        });

        await using var provider = services.BuildServiceProvider();
        var bus = provider.GetRequiredService<IBusControl>();
        await bus.StartAsync(cancellationToken);
        try
        {
            var queue = await bus.GetSendEndpoint(new Uri($"queue:{rehearsalBus.RenderQueue(options.Pool)}"));
            var shots = offered.Select(engine => (Engine: engine.Name, Folder: $"rehearsal/{engine.Name}")).ToList();
            var failures = new List<string>();
            foreach (var stage in new[] { "keyframe", "segment", "assemble" })
            {
                var tasks = shots.SelectMany(shot => Tasks(stage, shot.Engine, shot.Folder)).ToArray();
                await queue.Send(new RenderBundle { Tasks = tasks }, cancellationToken);
                foreach (var task in tasks)
                {
                    // A shot's first failure is its last: the next stages would have nothing to read.
                    if (await outcomes.Of(task.AttemptId).WaitAsync(cancellationToken) is { } failure && shots.RemoveAll(shot => shot.Engine == task.Engine) > 0)
                    {
                        failures.Add($"{task.Kind} of the {task.Engine} shot failed: {failure}");
                    }
                }
            }

            return ([.. shots.Select(shot => shot.Engine)], failures);
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
        }
    }

    private static IEnumerable<RenderTask> Tasks(string stage, string engine, string shotFolder)
    {
        var shotId = Guid.NewGuid();
        RenderTask Task(string kind, int[] frames) => new()
        {
            AttemptId = Guid.NewGuid(), TaskId = Guid.NewGuid(), JobId = Guid.Empty, ShotId = shotId, Kind = kind, Engine = engine,
            Prompt = "a red ball rolling in the desert at dusk", Width = Size, Height = Size, Fps = Frames, Steps = 4, Guidance = 3, Seed = 1,
            TotalFrames = Frames, Frames = frames, ShotFolder = shotFolder,
        };

        return stage switch
        {
            "keyframe" => [Task("keyframe", [0]), Task("keyframe", [Frames - 1])],
            "segment" => [Task("segment", [.. Enumerable.Range(1, Frames - 2)]) with { StartKeyframe = 0, EndKeyframe = Frames - 1 }],
            _ => [Task("assemble", [.. Enumerable.Range(0, Frames)]) with { Keyframes = [0, Frames - 1] }],
        };
    }

    /// <summary>Each rehearsed attempt's end: null when it succeeded, else why it failed.</summary>
    private sealed class RehearsalOutcomes
    {
        private readonly ConcurrentDictionary<Guid, TaskCompletionSource<string?>> _outcomes = new();

        public Task<string?> Of(Guid attemptId) => Completion(attemptId).Task;

        public void End(Guid attemptId, string? failure) => Completion(attemptId).TrySetResult(failure);

        private TaskCompletionSource<string?> Completion(Guid attemptId) =>
            _outcomes.GetOrAdd(attemptId, _ => new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously));
    }

    /// <summary>The coordinator's part in the rehearsal: every claim granted, every report taken.</summary>
    private sealed class StandInCoordinator(RehearsalOutcomes outcomes) : IConsumer<ClaimAttempts>, IConsumer<TasksSucceeded>, IConsumer<TaskFailed>, IConsumer<TaskProgressed>
    {
        public Task Consume(ConsumeContext<ClaimAttempts> context) =>
            context.RespondAsync(new AttemptClaimsDecided { Granted = context.Message.AttemptIds, Refused = [] });

        public Task Consume(ConsumeContext<TasksSucceeded> context)
        {
            foreach (var report in context.Message.Reports)
            {
                outcomes.End(report.AttemptId, null);
            }

            return Task.CompletedTask;
        }

        public Task Consume(ConsumeContext<TaskFailed> context)
        {
            outcomes.End(context.Message.AttemptId, $"{context.Message.Classification}: {context.Message.Reason}");
            return Task.CompletedTask;
        }

        public Task Consume(ConsumeContext<TaskProgressed> context) => Task.CompletedTask;
    }
}
