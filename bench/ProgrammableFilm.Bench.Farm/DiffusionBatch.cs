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
/// farm (two worker processes, one slot each) and by the engine alone in this process, on the same machine. Each farm
/// batch is followed by the engine's own run of the same shots, twice: each shot's frames in one request (its best),
/// and the farm's own requests one after another (each keyframe alone, then each segment conditioned on its
/// keyframes). A batch is compared with the engine run seconds after it: this machine's speed drifts by a fifth within
/// minutes, and one engine run after all the batches made the ratio swing with it (0.77–0.94 over five runs).
/// </summary>
/// <param name="FarmToEngine">The steady batches' median of each batch's frames/s over the engine's right after it.</param>
/// <param name="FreshFarmToEngine">The first batch's frames/s over the engine's right after it.</param>
public sealed record DiffusionBatch(int Frames, double EngineFramesPerSecond, double SameRequestsFramesPerSecond, double FreshFarmFramesPerSecond, double FreshFarmToEngine, double FreshWorkerBusyFraction, double FreshSegmentSeconds, double FarmFramesPerSecond, double FarmToEngine, double FarmToSameRequests, double WorkerBusyFraction, double WorkerBusyWhileWorkIsQueued, double SegmentSeconds)
{
    private const int Shots = 6;
    private const int Steps = 8;
    private const int KeyframeInterval = 12;

    /// <summary>Batches that warm the coordinator's diffusion paths, on workers stopped before the measured batches.</summary>
    private const int CoordinatorWarmupBatches = 2;

    /// <summary>A procedural warm-up job that compiles no more methods than this ends the warm-up.</summary>
    private const int SettledCompilations = 10;

    private const int MaxProceduralWarmups = 60;

    /// <summary>The batch is then rendered this many times on fresh workers, each time followed by the engine alone; the last three are the steady state.</summary>
    private const int Batches = 4;

    /// <summary>
    /// How often the bench looks for the batch's end. The batch's time is the job's own (its submission to its last
    /// shot's finish, both stamped by the coordinator), so this adds nothing to it; polling every 20 ms cost 7 % of the
    /// coordinator process's CPU during a batch (`perf`), on the cores the workers render on.
    /// </summary>
    private const int BatchPollMilliseconds = 200;

    public static async Task<DiffusionBatch> MeasureAsync(string postgres, string rabbitMq, string workerDll, string root)
    {
        var spec = new JobSpec("bench", "diffusion-batch", Lane.Batch, 50, [.. Enumerable.Range(0, Shots).Select(i => new ShotSpec
        {
            Name = $"dream-{i}", Prompt = "a red ball rolling in the desert at dusk", DurationSeconds = 1, Fps = 24, Width = 64, Height = 64,
            Steps = Steps, Guidance = 3, Seed = 100 + i, Engine = "diffusion", KeyframeInterval = KeyframeInterval,
        })]);
        var frames = spec.Shots.Sum(s => s.FrameCount);

        using var engine = new DiffusionEngine(new DiffusionEngineOptions { ModelPath = Path.Combine(root, "models", "pf-scene-v3.safetensors") });
        engine.LoadModel();
        // Warm like the workers, and then some: both kinds of request over the whole batch before any clock starts, so
        // that this process has finished recompiling the engine's code long before the farm is measured beside it.
        await EngineAloneAsync(engine, spec);
        await Task.Delay(500);

        var runs = await FarmAsync(spec, postgres, rabbitMq, workerDll, () => EngineAloneAsync(engine, spec));
        var fresh = runs[0];
        // The steady state: the last three batches, each against the engine's runs right after it.
        var steady = runs[^3..];
        var warm = steady.OrderBy(r => r.Farm.Seconds).ElementAt(steady.Count / 2);
        return new DiffusionBatch(
            frames,
            frames / Median(steady.Select(r => r.Engine.OneRequestSeconds)),
            frames / Median(steady.Select(r => r.Engine.SameRequestsSeconds)),
            frames / fresh.Farm.Seconds,
            fresh.Engine.OneRequestSeconds / fresh.Farm.Seconds,
            fresh.Farm.BusySeconds / (2 * fresh.Farm.Seconds),
            fresh.Farm.SegmentSeconds,
            frames / warm.Farm.Seconds,
            Median(steady.Select(r => r.Engine.OneRequestSeconds / r.Farm.Seconds)),
            Median(steady.Select(r => r.Engine.SameRequestsSeconds / r.Farm.Seconds)),
            warm.Farm.BusySeconds / (2 * warm.Farm.Seconds),
            warm.Farm.BusyWhileWorkIsQueued,
            warm.Farm.SegmentSeconds);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>The engine alone on the batch: each shot's frames in one request, then the farm's own requests.</summary>
    private static async Task<EngineRun> EngineAloneAsync(DiffusionEngine engine, JobSpec spec)
    {
        var alone = Stopwatch.GetTimestamp();
        foreach (var shot in spec.Shots)
        {
            await engine.RenderAsync(Request(shot, [.. Enumerable.Range(0, shot.FrameCount)]), null, CancellationToken.None);
        }

        var oneRequestSeconds = Stopwatch.GetElapsedTime(alone).TotalSeconds;
        var sameRequests = Stopwatch.GetTimestamp();
        await SameRequestsAsync(engine, spec);
        return new EngineRun(oneRequestSeconds, Stopwatch.GetElapsedTime(sameRequests).TotalSeconds);
    }

    private sealed record EngineRun(double OneRequestSeconds, double SameRequestsSeconds);

    private sealed record PairedRun(BatchRun Farm, EngineRun Engine);

    private static async Task<List<PairedRun>> FarmAsync(JobSpec spec, string postgres, string rabbitMq, string workerDll, Func<Task<EngineRun>> engineAlone)
    {
        var storage = Directory.CreateTempSubdirectory("pfilm-bench-diffusion").FullName;
        var database = await Baselines.CreateDatabaseAsync(postgres, "pfilm_bench_diffusion");
        var prefix = $"diff{Guid.NewGuid().ToString("N")[..6]}-";
        using var coordinator = await FarmHost.StartCoordinatorAsync(database, rabbitMq, prefix, storage);
        var submission = coordinator.Services.GetRequiredService<JobSubmission>();
        var contexts = coordinator.Services.GetRequiredService<IDbContextFactory<FarmDbContext>>();
        await using var db = await contexts.CreateDbContextAsync();
        // A farm's coordinator has run for hours when a batch arrives. A fresh one compiles its paths again and again as
        // the runtime promotes them to optimised code (a method after 30 calls, so per-job paths after 30 jobs): after
        // a procedural job and four diffusion batches it still compiled 200–400 methods in 0.6–0.75 s of CPU during
        // each of the first measured batches, on the cores the workers render on. Procedural jobs of the batch's shape
        // (the coordinator's work is the same whatever the engine) warm it until one compiles almost nothing, then the
        // batch itself twice, on workers that are stopped afterwards. The measured batches run on workers started after
        // that, so the first one shows what a worker's start leaves to its first tasks.
        using (var warmUpWorkers = new WorkerProcesses(workerDll, rabbitMq, prefix, storage, count: 2))
        {
            await warmUpWorkers.StartAsync();
            var procedural = spec with { Name = "warm-up", Shots = [.. spec.Shots.Select(s => s with { Engine = "procedural" })] };
            var jobs = await Compilation.WarmUntilSettledAsync(
                async _ => await Throughput.WaitForJobAsync(contexts, (await submission.SubmitAsync(procedural, CancellationToken.None)).Id, BatchPollMilliseconds),
                SettledCompilations,
                MaxProceduralWarmups);

            Console.WriteLine($"  coordinator warmed by {jobs} procedural jobs of the batch's shape (the last compiled at most {SettledCompilations} methods)");
            for (var i = 0; i < CoordinatorWarmupBatches; i++)
            {
                var job = await submission.SubmitAsync(spec with { Name = "warm-up", Shots = [.. spec.Shots.Select(s => s with { Seed = s.Seed - ((i + 1) * Shots) })] }, CancellationToken.None);
                await Throughput.WaitForJobAsync(contexts, job.Id, BatchPollMilliseconds);
            }
        }

        using var workers = new WorkerProcesses(workerDll, rabbitMq, prefix, storage, count: 2);
        await workers.StartAsync();
        var cpu = await CpuMeter.ForAsync(postgres, rabbitMq, workers.Ids);
        var runs = new List<PairedRun>();
        for (var i = 0; i < Batches; i++)
        {
            var cpuBefore = cpu.Take();
            var (jittedBefore, jitTimeBefore) = (System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime());
            var job = await submission.SubmitAsync(spec with { Shots = [.. spec.Shots.Select(s => s with { Seed = s.Seed + (i * Shots) })] }, CancellationToken.None);
            await Throughput.WaitForJobAsync(contexts, job.Id, BatchPollMilliseconds);
            var ended = await db.Jobs.Where(j => j.Id == job.Id).Select(j => new { j.CreatedAt, j.FinishedAt }).SingleAsync();
            var seconds = (ended.FinishedAt!.Value - ended.CreatedAt).TotalSeconds;
            var spent = cpu.Take() - cpuBefore;
            var (jitted, jitTime) = (System.Runtime.JitInfo.GetCompiledMethodCount() - jittedBefore, System.Runtime.JitInfo.GetCompilationTime() - jitTimeBefore);
            // Each worker holds one device (Worker__DeviceCount=1), so device-seconds are its busy seconds.
            var renders = await (
                from attempt in db.Attempts
                join task in db.Tasks on attempt.TaskId equals task.Id
                where task.JobId == job.Id && task.Kind != "assemble"
                select new { task.Kind, attempt.DeviceSeconds }).ToListAsync();
            var segmentSeconds = renders.Where(r => r.Kind == "segment").Average(r => r.DeviceSeconds);
            var farm = new BatchRun(seconds, renders.Sum(r => r.DeviceSeconds), await BusyWhileWorkIsQueuedAsync(db, job.Id), segmentSeconds);
            // The workers wait idle on their queues while the engine renders in this process.
            var idleBefore = cpu.Take();
            var engine = await engineAlone();
            var idle = cpu.Take() - idleBefore;
            var idleSeconds = engine.OneRequestSeconds + engine.SameRequestsSeconds;
            runs.Add(new PairedRun(farm, engine));
            Console.WriteLine($"  diffusion batch {i + 1} of {Batches}: farm {seconds:F2} s, engine alone {engine.OneRequestSeconds:F2} s (its farm's requests {engine.SameRequestsSeconds:F2} s); "
                + $"CPU during the batch: workers {spent.Workers:F2} s (their renders' device time {farm.BusySeconds:F2} s), coordinator and this script {spent.Coordinator:F2} s (compiling {jitted} methods: {jitTime.TotalSeconds:F2} s), PostgreSQL {spent.Postgres:F2} s, RabbitMQ {spent.RabbitMq:F2} s; "
                + $"the idle farm's CPU while the engine ran alone, per second: workers {idle.Workers / idleSeconds:F3} s, PostgreSQL {idle.Postgres / idleSeconds:F3} s, RabbitMQ {idle.RabbitMq / idleSeconds:F3} s");
        }

        await coordinator.StopAsync();
        Directory.Delete(storage, true);
        return runs;
    }

    /// <summary>
    /// The issue's measure: each worker's render time over the wall time while work is queued, from the batch's
    /// submission until the batch's last render starts (after that nothing waits: a worker then idle has nothing left
    /// to take, wherever the last tasks were claimed). A render is the span before its report as long as its device
    /// time; the worker's clock stamps the report, on this machine the coordinator's. The whole-batch figure also counts
    /// that tail and the last shots' assembly. The least busy worker is reported.
    /// </summary>
    private static async Task<double> BusyWhileWorkIsQueuedAsync(FarmDbContext db, Guid jobId)
    {
        var submittedAt = await db.Jobs.Where(j => j.Id == jobId).Select(j => j.CreatedAt).SingleAsync();
        var renders = (await (
            from attempt in db.Attempts
            join task in db.Tasks on attempt.TaskId equals task.Id
            where task.JobId == jobId && task.Kind != "assemble" && attempt.ReportedAt != null
            select new { attempt.WorkerId, attempt.DeviceSeconds, ReportedAt = attempt.ReportedAt!.Value }).ToListAsync())
            .Select(r => (r.WorkerId, Start: r.ReportedAt.AddSeconds(-r.DeviceSeconds), End: r.ReportedAt)).ToList();
        var queuedUntil = renders.Max(r => r.Start);
        var window = (queuedUntil - submittedAt).TotalSeconds;
        return renders.GroupBy(r => r.WorkerId)
            .Min(worker => worker.Sum(r => Math.Max(0, ((r.End < queuedUntil ? r.End : queuedUntil) - (r.Start > submittedAt ? r.Start : submittedAt)).TotalSeconds)) / window);
    }

    private sealed record BatchRun(double Seconds, double BusySeconds, double BusyWhileWorkIsQueued, double SegmentSeconds);

    /// <summary>The requests the farm's tasks make, in order: each keyframe alone, then each segment between two.</summary>
    private static async Task SameRequestsAsync(DiffusionEngine engine, JobSpec spec)
    {
        foreach (var shot in spec.Shots)
        {
            int[] keys = [.. Enumerable.Range(0, shot.FrameCount).Where(f => f % KeyframeInterval == 0 || f == shot.FrameCount - 1)];
            var images = new Dictionary<int, RgbImage>();
            foreach (var key in keys)
            {
                images[key] = (await engine.RenderAsync(Request(shot, [key]), null, CancellationToken.None)).Frames[0].Image;
            }

            for (var i = 0; i + 1 < keys.Length; i++)
            {
                var request = Request(shot, [.. Enumerable.Range(keys[i] + 1, keys[i + 1] - keys[i] - 1)]) with
                {
                    StartKeyframe = new ConditioningFrame(keys[i], images[keys[i]]),
                    EndKeyframe = new ConditioningFrame(keys[i + 1], images[keys[i + 1]]),
                };
                await engine.RenderAsync(request, null, CancellationToken.None);
            }
        }
    }

    private static RenderRequest Request(ShotSpec shot, int[] frames) => new()
    {
        Prompt = shot.Prompt, Width = shot.Width, Height = shot.Height, Steps = shot.Steps, Guidance = shot.Guidance, Seed = shot.Seed,
        TotalFrames = shot.FrameCount, FrameIndices = frames,
    };
}
