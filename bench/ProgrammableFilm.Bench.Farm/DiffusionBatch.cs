using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Diffusion;

namespace ProgrammableFilm.Bench.Farm;

/// <summary>
/// Whether the farm keeps its devices busy on real work: six diffusion shots of 24 frames at 64×64, rendered by the
/// engine alone in this process and by the farm (two worker processes, one slot each), on the same machine.
/// </summary>
public sealed record DiffusionBatch(int Frames, double EngineFramesPerSecond, double FarmFramesPerSecond, double WorkerBusyFraction)
{
    private const int Shots = 6;
    private const int Steps = 8;

    public static async Task<DiffusionBatch> MeasureAsync(string postgres, string rabbitMq, string workerDll, string root)
    {
        var spec = new JobSpec("bench", "diffusion-batch", Lane.Batch, 50, [.. Enumerable.Range(0, Shots).Select(i => new ShotSpec
        {
            Name = $"dream-{i}", Prompt = "a red ball rolling in the desert at dusk", DurationSeconds = 1, Fps = 24, Width = 64, Height = 64,
            Steps = Steps, Guidance = 3, Seed = 100 + i, Engine = "diffusion", KeyframeInterval = 12,
        })]);
        var frames = spec.Shots.Sum(s => s.FrameCount);

        using var engine = new DiffusionEngine(new DiffusionEngineOptions { ModelPath = Path.Combine(root, "models", "pf-scene-v3.safetensors") });
        engine.LoadModel();
        var alone = Stopwatch.GetTimestamp();
        foreach (var shot in spec.Shots)
        {
            await engine.RenderAsync(
                new RenderRequest
                {
                    Prompt = shot.Prompt, Width = shot.Width, Height = shot.Height, Steps = shot.Steps, Guidance = shot.Guidance, Seed = shot.Seed,
                    TotalFrames = shot.FrameCount, FrameIndices = [.. Enumerable.Range(0, shot.FrameCount)],
                },
                null,
                CancellationToken.None);
        }

        var engineSeconds = Stopwatch.GetElapsedTime(alone).TotalSeconds;

        var storage = Directory.CreateTempSubdirectory("pfilm-bench-diffusion").FullName;
        var database = await Baselines.CreateDatabaseAsync(postgres, "pfilm_bench_diffusion");
        var prefix = $"diff{Guid.NewGuid().ToString("N")[..6]}-";
        using var coordinator = await FarmHost.StartCoordinatorAsync(database, rabbitMq, prefix, storage);
        using var workers = new WorkerProcesses(workerDll, rabbitMq, prefix, storage, count: 2);
        await workers.StartAsync();
        var started = Stopwatch.GetTimestamp();
        var job = await coordinator.Services.GetRequiredService<JobSubmission>().SubmitAsync(spec, CancellationToken.None);
        var reports = coordinator.Services.GetRequiredService<JobReports>();
        while ((await reports.StatusAsync(job.Id, CancellationToken.None))!.State is not ("Succeeded" or "Failed"))
        {
            await Task.Delay(20);
        }

        var farmSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        await using var db = await coordinator.Services.GetRequiredService<IDbContextFactory<FarmDbContext>>().CreateDbContextAsync();
        // Each worker holds one device (Worker__DeviceCount=1), so device-seconds are its busy seconds.
        var busy = await (
            from attempt in db.Attempts
            join task in db.Tasks on attempt.TaskId equals task.Id
            where task.JobId == job.Id && task.Kind != "assemble"
            select attempt.DeviceSeconds).SumAsync();
        await coordinator.StopAsync();
        Directory.Delete(storage, true);
        return new DiffusionBatch(frames, frames / engineSeconds, frames / farmSeconds, busy / (2 * farmSeconds));
    }
}
