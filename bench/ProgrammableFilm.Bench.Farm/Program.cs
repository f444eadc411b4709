using System.Diagnostics;
using System.Globalization;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using ProgrammableFilm.Bench.Farm;
using ProgrammableFilm.Cli;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Messaging;
using ProgrammableFilm.Storage;

// Measures the coordinator against the raw limits of its parts, in one process, on this machine:
// the example shot's wall time in embedded and farm mode, and the coordinator's overhead per task.
var postgres = Environment.GetEnvironmentVariable("PFILM_TEST_POSTGRES") ?? throw new InvalidOperationException("PFILM_TEST_POSTGRES is not set; run bench/farm.sh");
var rabbitMq = Environment.GetEnvironmentVariable("PFILM_TEST_RABBITMQ") ?? throw new InvalidOperationException("PFILM_TEST_RABBITMQ is not set; run bench/farm.sh");
var root = args.Length > 0 ? args[0] : Directory.GetCurrentDirectory();

// --throughput: only the baselines and the throughput run (for iterating on the dispatch path).
var throughputOnly = args.Contains("--throughput", StringComparer.Ordinal);
var example = JobSpecReader.ReadYaml(await File.ReadAllTextAsync(Path.Combine(root, "examples", "racing-at-dusk.yaml"))).Spec!;
var workerDll = Path.Combine(root, "src", "ProgrammableFilm.Worker", "bin", "Release", "net10.0", "ProgrammableFilm.Worker.dll");
const int Repetitions = 3;

// --idle: only ready → claimed with idle workers, in parts (for iterating on the dispatch path).
if (args.Contains("--idle", StringComparer.Ordinal))
{
    var storage = Directory.CreateTempSubdirectory("pfilm-bench-idle").FullName;
    var database = await Baselines.CreateDatabaseAsync(postgres, "pfilm_bench_idle");
    var prefix = $"idle{Guid.NewGuid().ToString("N")[..6]}-";
    using var coordinator = await FarmHost.StartCoordinatorAsync(database, rabbitMq, prefix, storage);
    using var workers = new WorkerProcesses(workerDll, rabbitMq, prefix, storage, count: 2, slots: 4);
    await workers.StartAsync();
    var spec = Throughput.OneFrameTasks("idle", 24);
    await IdleLatency.MeasureAsync(coordinator.Services, spec, Throughput.IdleWarmUpSamples);
    var idle = await IdleLatency.MeasureAsync(coordinator.Services, spec, Throughput.IdleSamples);
    Console.WriteLine($"| ready (submission committed) → claimed with idle workers, {Throughput.IdleSamples} single tasks after {Throughput.IdleWarmUpSamples} warm-up | p50 | p99 |");
    Console.WriteLine("| --- | ---: | ---: |");
    Console.WriteLine($"| committed → dispatcher's transaction starts (wake-up, its reads) | {Stats.Format(idle.ReadyToDispatching.Median)} | {Stats.Format(idle.ReadyToDispatching.P99)} |");
    Console.WriteLine($"| dispatcher's transaction → claimed (its writes, send, worker's claim) | {Stats.Format(idle.DispatchingToClaimed.Median)} | {Stats.Format(idle.DispatchingToClaimed.P99)} |");
    Console.WriteLine($"| ready → claimed | {Stats.Format(idle.ReadyToClaimed.Median)} | {Stats.Format(idle.ReadyToClaimed.P99)} |");
    await coordinator.StopAsync();
    return;
}

// --share: two projects weighted 3:1 saturating the fleet with default bundles, their device-seconds over a minute.
if (args.Contains("--share", StringComparer.Ordinal))
{
    var share = await Share.MeasureAsync(postgres, rabbitMq, workerDll, TimeSpan.FromMinutes(1));
    Console.WriteLine("| fair share: projects weighted 3:1, both saturating 2 workers × 4 slots, one-frame tasks in default bundles | value | target |");
    Console.WriteLine("| --- | ---: | ---: |");
    Console.WriteLine($"| weight-3 project's share of device-seconds over {share.Window.TotalSeconds:F0} s ({share.Attempts} attempts finished) | {share.ShareA:P1} | 75% ± 5 |");
    Console.WriteLine($"| its share of attempts finished | {share.AttemptShareA:P1} | |");
    Console.WriteLine($"| the farm's tasks/s over the window (15 shots of 10,000 one-frame tasks queued) | {share.Attempts / share.Window.TotalSeconds:F0} | |");
    Console.WriteLine($"fair_share_weight3={share.ShareA.ToString("F3", CultureInfo.InvariantCulture)}");
    return;
}

// --diffusion: only the diffusion batch against the engine alone (device utilisation).
if (args.Contains("--diffusion", StringComparer.Ordinal))
{
    PrintDiffusion(await DiffusionBatch.MeasureAsync(postgres, rabbitMq, workerDll, root));
    return;
}

// --plan: only the big job's planning, five times on one coordinator (for iterating on the submission path).
if (args.Contains("--plan", StringComparer.Ordinal))
{
    var planSeconds = await Planning.MeasureAsync(postgres, rabbitMq, runs: 5);
    Console.WriteLine("| planning and writing a 100,010-task job (10 shots × 10,000 frames), on a warmed coordinator | median | min | max |");
    Console.WriteLine("| --- | ---: | ---: | ---: |");
    Console.WriteLine($"| submission (plan, quote, COPY, commit) | {Stats.Format(planSeconds.Median)} | {Stats.Format(planSeconds.Seconds.Min())} | {Stats.Format(planSeconds.Seconds.Max())} |");
    Console.WriteLine($"plan_100k_seconds={planSeconds.Median.ToString("F2", CultureInfo.InvariantCulture)}");
    return;
}

var commit = await Baselines.PostgresCommitAsync(postgres, 300);
var roundTrip = await Baselines.RabbitMqRoundTripAsync(rabbitMq, 300);
var rawRabbitMq = await RawLimits.RabbitMqMessagesPerSecondAsync(rabbitMq, 20_000);
var engineMilliseconds = await RawLimits.EngineMillisecondsPerTaskAsync(2_000);
var rawPostgres = await RawLimits.PostgresTransitionsPerSecondAsync(postgres, connections: 8, TimeSpan.FromSeconds(5));

var embedded = new List<double>();
for (var i = 0; i < (throughputOnly ? 0 : Repetitions); i++)
{
    var folder = Directory.CreateTempSubdirectory("pfilm-bench-embedded").FullName;
    using var host = await EmbeddedFarm.StartAsync(folder, 1, CancellationToken.None);
    embedded.Add(await Runs.RenderAsync(host.Services, example));
    await host.StopAsync();
    Directory.Delete(folder, true);
}

var farm = new List<double>();
var overheads = new Overheads(new Stats([]), new Stats([]), new Stats([]), new Stats([]));
if (!throughputOnly)
{
    var storage = Directory.CreateTempSubdirectory("pfilm-bench-farm").FullName;
    var database = await Baselines.CreateDatabaseAsync(postgres, "pfilm_bench_farm");
    var prefix = $"bench{Guid.NewGuid().ToString("N")[..6]}-";
    using var coordinator = await FarmHost.StartCoordinatorAsync(database, rabbitMq, prefix, storage);
    using var workers = new WorkerProcesses(workerDll, rabbitMq, prefix, storage, count: 2);
    await workers.StartAsync();
    for (var i = 0; i < Repetitions; i++)
    {
        farm.Add(await Runs.RenderAsync(coordinator.Services, example with { Shots = [example.Shots[0] with { Name = $"racing-{i}" }] }));
    }

    overheads = await Overheads.MeasureAsync(coordinator.Services);
    await coordinator.StopAsync();
    Directory.Delete(storage, true);
}

var diffusion = throughputOnly ? null : await DiffusionBatch.MeasureAsync(postgres, rabbitMq, workerDll, root);
var throughput = await Throughput.MeasureAsync(postgres, rabbitMq, workerDll, workers: 2, slots: 4, frames: 2400);

var limit = commit.Median + roundTrip.Median;
Console.WriteLine();
Console.WriteLine($"# Coordinator benchmark ({Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd})");
Console.WriteLine();
Console.WriteLine("| measurement | median | p95 | ratio to baseline |");
Console.WriteLine("| --- | ---: | ---: | ---: |");
Row("baseline: PostgreSQL commit (UPDATE in a transaction)", commit, null);
Row("baseline: RabbitMQ request/response (MassTransit)", roundTrip, null);
Row("baseline: commit + round trip (the least a claim can cost)", new Stats([limit]), null);
Row("ready → dispatched (attempt committed, RenderTask sent)", overheads.ReadyToDispatched, limit);
Row("ready → claimed (includes waiting for a free worker slot)", overheads.ReadyToClaimed, limit);
Row("dispatched → claimed", overheads.DispatchedToClaimed, limit);
Row("worker success → dependants dispatched", overheads.SuccessToDependantsDispatched, limit);
Console.WriteLine();
Console.WriteLine("| example shot (3 s, 24 fps, 640×360, procedural) | median wall time | runs |");
Console.WriteLine("| --- | ---: | ---: |");
Console.WriteLine($"| embedded (SQLite, in-memory bus, 1 in-process worker) | {Stats.Format(new Stats(embedded).Median)} | {embedded.Count} |");
Console.WriteLine($"| farm (PostgreSQL, RabbitMQ, 2 worker processes) | {Stats.Format(new Stats(farm).Median)} | {farm.Count} |");

if (diffusion is not null)
{
    PrintDiffusion(diffusion);
}

Console.WriteLine();
Console.WriteLine($"| throughput: one 64×64 procedural shot, {throughput.Tasks} one-frame tasks, 2 workers × 4 slots | value | ratio |");
Console.WriteLine("| --- | ---: | ---: |");
Console.WriteLine($"| raw limit: RabbitMQ persistent messages, published with confirms and consumed with acks | {rawRabbitMq:F0} msg/s | |");
Console.WriteLine($"| raw limit: PostgreSQL durable one-row transitions (8 connections, one UPDATE per commit) | {rawPostgres:F0} /s | |");
Console.WriteLine($"| raw limit: the task's own work (64×64 procedural frame rendered and PNG-encoded, one thread, no farm), CPU per task | {engineMilliseconds:F2} ms | 2 cores ÷ that = {2000 / engineMilliseconds:F0} tasks/s |");
Console.WriteLine($"| farm tasks/s on freshly started processes (the warm-up job: JIT compiling) | {throughput.ColdTasksPerSecond:F0} | |");
Console.WriteLine($"| farm tasks/s (first claim → last frame task succeeded, after the warm-up job) | {throughput.TasksPerSecond:F0} | {throughput.TasksPerSecond / rawRabbitMq:F3} of RabbitMQ's msg/s, {throughput.TasksPerSecond / rawPostgres:F3} of PostgreSQL's transitions/s |");
var perTask = throughput.Cpu.Total / throughput.Tasks;
Console.WriteLine($"| CPU per task: coordinator / workers / PostgreSQL / RabbitMQ / all (ms) | {Ms(throughput.Cpu.Coordinator)} / {Ms(throughput.Cpu.Workers)} / {Ms(throughput.Cpu.Postgres)} / {Ms(throughput.Cpu.RabbitMq)} / {Ms(throughput.Cpu.Total)} | {Environment.ProcessorCount} cores ÷ CPU per task = {Environment.ProcessorCount / perTask:F0} tasks/s |");
Console.WriteLine($"| workers' slots busy rendering (Σ device-seconds ÷ slot-seconds) | {throughput.WorkerBusyFraction:P1} | |");
Console.WriteLine($"| mean idle gap of a slot between two tasks (all of it: waiting for work included) | {Stats.Format(throughput.IdleGapSeconds)} | |");
Console.WriteLine($"| slot handover: a slot's finish → the start of an attempt already claimed and waiting, p50 / p99 | {Stats.Format(throughput.Handover.Median)} / {Stats.Format(throughput.Handover.P99)} | target < 5 ms |");
Console.WriteLine($"| ready (submission committed) → claimed with idle workers p50 / p99 ({Throughput.IdleSamples} single tasks after {Throughput.IdleWarmUpSamples} uncounted) | {Stats.Format(throughput.Idle.ReadyToClaimed.Median)} / {Stats.Format(throughput.Idle.ReadyToClaimed.P99)} | target 10 ms / 50 ms |");
Console.WriteLine($"| its parts, p50: committed → the dispatcher's transaction (wake-up, reads); that → claimed (writes, send, the worker's claim) | {Stats.Format(throughput.Idle.ReadyToDispatching.Median)}; {Stats.Format(throughput.Idle.DispatchingToClaimed.Median)} | |");
Console.WriteLine($"| ready → claimed under the backlog p50 / p99 (includes waiting for a free slot) | {Stats.Format(throughput.ReadyToClaimed.Median)} / {Stats.Format(throughput.ReadyToClaimed.P99)} | |");
Console.WriteLine($"| dispatched → claimed p50 / p99 | {Stats.Format(throughput.DispatchedToClaimed.Median)} / {Stats.Format(throughput.DispatchedToClaimed.P99)} | |");
Console.WriteLine($"| claimed → worker reported (waiting for a slot, render, write) p50 / p99 | {Stats.Format(throughput.ClaimedToReported.Median)} / {Stats.Format(throughput.ClaimedToReported.P99)} | |");
Console.WriteLine($"| worker reported → coordinator applied p50 / p99 | {Stats.Format(throughput.ReportedToApplied.Median)} / {Stats.Format(throughput.ReportedToApplied.P99)} | |");
Console.WriteLine($"| success transactions (tasks per commit) | {throughput.SuccessCommits} ({(double)throughput.Tasks / throughput.SuccessCommits:F1}) | |");
Console.WriteLine($"| planning and writing the job (submission) | {Stats.Format(throughput.SubmitSeconds)} | |");
Console.WriteLine($"| planning and writing a 100,010-task job (10 shots × 10,000 frames) | {Stats.Format(throughput.PlanBigSeconds)} | {throughput.PlanBigSeconds / 2:F2} of the 2 s target |");
Console.WriteLine($"| preview job's first task: ready → dispatched, behind a backlog of 1,000,100 tasks (that job and a 900,090-task one), {throughput.PreviewFirstDispatch.Seconds.Count} jobs one after another: p50 / max (of which the submission itself, p50 / max) | {Stats.Format(throughput.PreviewFirstDispatch.Median)} / {Stats.Format(throughput.PreviewFirstDispatch.Seconds.Max())} ({Stats.Format(throughput.PreviewSubmit.Median)} / {Stats.Format(throughput.PreviewSubmit.Seconds.Max())}) | target < 1 s |");
Console.WriteLine($"| a one-row commit on a connection of its own, every 20 ms while the background planner writes the 900,090-task backlog ({throughput.BacklogCommits.Seconds.Count} commits): p50 / p99 / max | {Stats.Format(throughput.BacklogCommits.Median)} / {Stats.Format(throughput.BacklogCommits.P99)} / {Stats.Format(throughput.BacklogCommits.Seconds.Max())} | each small transition of the farm pays it meanwhile |");
Console.WriteLine($"| farm tasks/s with that backlog of 1,000,100 tasks queued (attempts succeeded in {Throughput.BacklogWindow.TotalSeconds:F0} s after the previews) | {throughput.BacklogTasksPerSecond:F0} | {throughput.BacklogTasksPerSecond / throughput.TasksPerSecond:F2} of the farm's tasks/s above |");
Console.WriteLine($"farm_tasks_per_second={throughput.TasksPerSecond.ToString("F1", CultureInfo.InvariantCulture)}");

static void PrintDiffusion(DiffusionBatch diffusion)
{
    Console.WriteLine();
    Console.WriteLine($"| diffusion batch: 6 shots × 24 frames at 64×64, 8 steps ({diffusion.Frames} frames) | value | ratio |");
    Console.WriteLine("| --- | ---: | ---: |");
    Console.WriteLine($"| engine alone, in this process, each shot's frames in one request: median of the runs after the last three batches (frames/s) | {diffusion.EngineFramesPerSecond:F1} | 1.00 |");
    Console.WriteLine($"| engine alone, the farm's own requests in turn: keyframes one by one, then segments (frames/s) | {diffusion.SameRequestsFramesPerSecond:F1} | {diffusion.SameRequestsFramesPerSecond / diffusion.EngineFramesPerSecond:F2} of the engine |");
    Console.WriteLine($"| farm end to end, first batch after the workers' start, submit → job succeeded (frames/s) | {diffusion.FreshFarmFramesPerSecond:F1} | {diffusion.FreshFarmToEngine:F2} of the engine run after it |");
    Console.WriteLine($"| its workers busy rendering (Σ render time ÷ worker wall time, assembly excluded) | {diffusion.FreshWorkerBusyFraction:P1} | |");
    Console.WriteLine($"| its 11-frame segments' mean device time (s), what a worker's start left to its first tasks | {diffusion.FreshSegmentSeconds:F3} | {diffusion.FreshSegmentSeconds / diffusion.SegmentSeconds:F2} of the steady state's {diffusion.SegmentSeconds:F3} |");
    Console.WriteLine($"| farm end to end, 2 worker processes × 1 slot, steady state: median of the last three of four batches (frames/s) | {diffusion.FarmFramesPerSecond:F1} | {diffusion.FarmToEngine:F2} of the engine (median of each batch against the run after it; target 0.80), {diffusion.FarmToSameRequests:F2} of its own requests |");
    Console.WriteLine($"| its workers busy rendering, whole batch: Σ render time ÷ (2 × submit → job succeeded) | {diffusion.WorkerBusyFraction:P1} | |");
    Console.WriteLine($"| its least busy worker while work is queued: Σ its render time ÷ (submit → the batch's last render starts) | {diffusion.WorkerBusyWhileWorkIsQueued:P1} | target 90% |");
}

string Ms(double cpuSeconds) => (cpuSeconds / throughput.Tasks * 1000).ToString("F2", CultureInfo.InvariantCulture);

static void Row(string name, Stats stats, double? baseline) =>
    Console.WriteLine($"| {name} | {Stats.Format(stats.Median)} | {Stats.Format(stats.P95)} | {(baseline is { } b ? (stats.Median / b).ToString("F1", CultureInfo.InvariantCulture) + "×" : "1.0×")} |");

namespace ProgrammableFilm.Bench.Farm
{
    /// <summary>A ping for the raw request/response baseline.</summary>
    public sealed record Ping(int Sequence);

    /// <summary>The reply to <see cref="Ping"/>.</summary>
    public sealed record Pong(int Sequence);

    public sealed class PingConsumer : IConsumer<Ping>
    {
        public Task Consume(ConsumeContext<Ping> context) => context.RespondAsync(new Pong(context.Message.Sequence));
    }

    public sealed record Stats(IReadOnlyList<double> Seconds)
    {
        public double Median => Percentile(0.5);

        public double P95 => Percentile(0.95);

        public double P99 => Percentile(0.99);

        public static string Format(double seconds) => seconds >= 1 ? $"{seconds:F2} s" : $"{seconds * 1000:F2} ms";

        private double Percentile(double p)
        {
            var sorted = Seconds.Order().ToList();
            return sorted.Count == 0 ? double.NaN : sorted[(int)Math.Min(sorted.Count - 1, Math.Floor(p * sorted.Count))];
        }
    }

    public static class Baselines
    {
        public static async Task<string> CreateDatabaseAsync(string admin, string prefix)
        {
            var name = $"{prefix}_{Guid.NewGuid():N}"[..40];
            await using var connection = new NpgsqlConnection(admin);
            await connection.OpenAsync();
            await new NpgsqlCommand($"CREATE DATABASE {name}", connection).ExecuteNonQueryAsync();
            return new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString;
        }

        public static async Task<Stats> PostgresCommitAsync(string admin, int count)
        {
            await using var connection = new NpgsqlConnection(await CreateDatabaseAsync(admin, "pfilm_bench_raw"));
            await connection.OpenAsync();
            await new NpgsqlCommand("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL); INSERT INTO t VALUES (1, 0);", connection).ExecuteNonQueryAsync();
            var samples = new List<double>(count);
            for (var i = 0; i < count; i++)
            {
                var started = Stopwatch.GetTimestamp();
                await using var transaction = await connection.BeginTransactionAsync();
                await new NpgsqlCommand("UPDATE t SET v = v + 1 WHERE id = 1", connection, transaction).ExecuteNonQueryAsync();
                await transaction.CommitAsync();
                samples.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
            }

            return new Stats(samples);
        }

        public static async Task<Stats> RabbitMqRoundTripAsync(string uri, int count)
        {
            var queue = $"bench-ping-{Guid.NewGuid().ToString("N")[..6]}";
            var services = new ServiceCollection();
            services.AddLogging();
            services.AddMassTransit(bus =>
            {
                bus.AddConsumer<PingConsumer>().Endpoint(e => e.Name = queue);
                bus.AddRequestClient<Ping>(new Uri($"queue:{queue}"));
                bus.UseFarmTransport(new BusOptions { RabbitMqUri = uri });
            });
            await using var provider = services.BuildServiceProvider();
            var control = provider.GetRequiredService<IBusControl>();
            await control.StartAsync();
            try
            {
                var client = provider.GetRequiredService<IRequestClient<Ping>>();
                for (var i = 0; i < 20; i++)
                {
                    await client.GetResponse<Pong>(new Ping(i));
                }

                var samples = new List<double>(count);
                for (var i = 0; i < count; i++)
                {
                    var started = Stopwatch.GetTimestamp();
                    await client.GetResponse<Pong>(new Ping(i));
                    samples.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
                }

                return new Stats(samples);
            }
            finally
            {
                await control.StopAsync();
            }
        }
    }

    /// <summary>
    /// How long a task that becomes Ready waits for an idle worker to claim it, in two parts: until the dispatcher's
    /// transaction starts (wake-up and its reads) and from there to the claim (its writes, the send, the worker's claim).
    /// Ready is when the submission committed: the task's ready_at is taken when the submission starts planning, before
    /// the quote and the writes, and the submission's own time is not the dispatcher's.
    /// </summary>
    public sealed record IdleLatency(Stats ReadyToClaimed, Stats ReadyToDispatching, Stats DispatchingToClaimed)
    {
        public static JobSpec Single(JobSpec spec) => spec with { Name = "idle", Shots = [spec.Shots[0] with { DurationSeconds = 1 / 24.0 }] };

        public static async Task<IdleLatency> MeasureAsync(IServiceProvider coordinator, JobSpec spec, int samples)
        {
            var contexts = coordinator.GetRequiredService<IDbContextFactory<FarmDbContext>>();
            var submission = coordinator.GetRequiredService<JobSubmission>();
            List<double> claimed = [], dispatching = [], toClaim = [];
            for (var i = 0; i < samples; i++)
            {
                var one = await submission.SubmitAsync(Single(spec), CancellationToken.None);
                var committed = DateTime.UtcNow;
                while (true)
                {
                    await using var db = await contexts.CreateDbContextAsync();
                    var attempt = await (
                        from task in db.Tasks
                        join a in db.Attempts on task.CurrentAttemptId equals a.Id
                        where task.JobId == one.Id && task.Kind == "keyframe" && a.ClaimedAt != null
                        select new { a.CreatedAt, a.ClaimedAt })
                        .FirstOrDefaultAsync();
                    if (attempt is not null)
                    {
                        claimed.Add((attempt.ClaimedAt!.Value - committed).TotalSeconds);
                        dispatching.Add((attempt.CreatedAt - committed).TotalSeconds);
                        toClaim.Add((attempt.ClaimedAt.Value - attempt.CreatedAt).TotalSeconds);
                        break;
                    }

                    await Task.Delay(5);
                }

                // The sample's assembly (an ffmpeg process) would otherwise share the two cores with the next sample.
                await Throughput.WaitForJobAsync(contexts, one.Id);
                await Task.Delay(50);
            }

            return new IdleLatency(new Stats(claimed), new Stats(dispatching), new Stats(toClaim));
        }
    }

    /// <summary>Device-seconds of two projects weighted 3:1 that both keep the fleet busy, over one window.</summary>
    public sealed record Share(TimeSpan Window, int Attempts, double ShareA, double AttemptShareA)
    {
        public static async Task<Share> MeasureAsync(string postgres, string rabbitMq, string workerDll, TimeSpan window)
        {
            var storage = Directory.CreateTempSubdirectory("pfilm-bench-share").FullName;
            var database = await Baselines.CreateDatabaseAsync(postgres, "pfilm_bench_share");
            var prefix = $"share{Guid.NewGuid().ToString("N")[..6]}-";
            using var coordinator = await FarmHost.StartCoordinatorAsync(database, rabbitMq, prefix, storage);
            using var processes = new WorkerProcesses(workerDll, rabbitMq, prefix, storage, 2, 4);
            await processes.StartAsync();
            var submission = coordinator.Services.GetRequiredService<JobSubmission>();
            var contexts = coordinator.Services.GetRequiredService<IDbContextFactory<FarmDbContext>>();
            var warmUp = await submission.SubmitAsync(Throughput.OneFrameTasks("warm-up", 2400), CancellationToken.None);
            await Throughput.WaitForFramesAsync(contexts, warmUp.Id);

            var shares = coordinator.Services.GetRequiredService<ProjectShares>();
            await shares.SetAsync("share-a", 3, CancellationToken.None);
            await shares.SetAsync("share-b", 1, CancellationToken.None);
            // Each outlasts the window at the whole fleet's speed (1,000 tasks/s), so both saturate it from start to end.
            var shot = Throughput.OneFrameTasks("x", 10_000).Shots[0];
            JobSpec Busy(string project, int shots) => new(project, project, Lane.Batch, 50, [.. Enumerable.Range(0, shots).Select(i => shot with { Name = $"{project}-{i}" })]);
            var a = await submission.SubmitAsync(Busy("share-a", 10), CancellationToken.None);
            var b = await submission.SubmitAsync(Busy("share-b", 5), CancellationToken.None);

            // The first seconds belong to what was queued before the weights met both jobs.
            await Task.Delay(TimeSpan.FromSeconds(10));
            var windowStart = DateTime.UtcNow;
            await Task.Delay(window);
            var windowEnd = DateTime.UtcNow;
            await using var db = await contexts.CreateDbContextAsync();
            var finished = await (
                from attempt in db.Attempts
                join task in db.Tasks on attempt.TaskId equals task.Id
                where (task.JobId == a.Id || task.JobId == b.Id) && attempt.FinishedAt >= windowStart && attempt.FinishedAt < windowEnd && attempt.State == Data.Entities.AttemptState.Succeeded
                select new { task.JobId, attempt.DeviceSeconds })
                .ToListAsync();
            await coordinator.StopAsync();
            return new Share(
                windowEnd - windowStart,
                finished.Count,
                finished.Where(f => f.JobId == a.Id).Sum(f => f.DeviceSeconds) / finished.Sum(f => f.DeviceSeconds),
                (double)finished.Count(f => f.JobId == a.Id) / finished.Count);
        }
    }

    public static class Planning
    {
        /// <summary>A run that compiles at most this many methods is taken as a warm coordinator's.</summary>
        private const int SettledCompilations = 50;

        private const int MaxWarmUps = 12;

        /// <summary>
        /// The big job of <see cref="Throughput"/>'s planning row, submitted with no worker (so nothing is dispatched
        /// meanwhile). A fresh coordinator spent 1.4–1.5 s of each of its first three runs compiling (2,100–4,600
        /// methods promoted to optimised code, on one of the two cores PostgreSQL writes the job on); a farm's
        /// coordinator has run for hours when a big job arrives, so the job is submitted until one compiles almost
        /// nothing, and the runs after that are measured.
        /// </summary>
        public static async Task<Stats> MeasureAsync(string postgres, string rabbitMq, int runs)
        {
            var storage = Directory.CreateTempSubdirectory("pfilm-bench-plan").FullName;
            var database = await Baselines.CreateDatabaseAsync(postgres, "pfilm_bench_plan");
            using var coordinator = await FarmHost.StartCoordinatorAsync(database, rabbitMq, $"plan{Guid.NewGuid().ToString("N")[..6]}-", storage);
            var submission = coordinator.Services.GetRequiredService<JobSubmission>();
            var cpu = await CpuMeter.ForAsync(database, rabbitMq, []);
            await Compilation.WarmUntilSettledAsync(warmUp => SubmitAsync(submission, cpu, $"warm-up-{warmUp}"), SettledCompilations, MaxWarmUps);

            var seconds = new List<double>();
            for (var run = 1; run <= runs; run++)
            {
                seconds.Add(await SubmitAsync(submission, cpu, $"big-{run}"));
            }

            await coordinator.StopAsync();
            Directory.Delete(storage, true);
            return new Stats(seconds);
        }

        private static async Task<double> SubmitAsync(JobSubmission submission, CpuMeter cpu, string name)
        {
            var cpuBefore = cpu.Take();
            var (jittedBefore, jitTimeBefore) = (System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime());
            var started = Stopwatch.GetTimestamp();
            await submission.SubmitAsync(Throughput.BigJob(name), CancellationToken.None);
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var spent = cpu.Take() - cpuBefore;
            var (jitted, jitTime) = (System.Runtime.JitInfo.GetCompiledMethodCount() - jittedBefore, System.Runtime.JitInfo.GetCompilationTime() - jitTimeBefore);
            Console.WriteLine(FormattableString.Invariant(
                $"  {name}: {seconds:F2} s; CPU: coordinator {spent.Coordinator:F2} s (compiling {jitted} methods, {jitTime.TotalSeconds:F2} s), PostgreSQL {spent.Postgres:F2} s"));
            return seconds;
        }
    }

    public static class FarmHost
    {
        /// <summary>The farm's coordinator, composed as the API composes it, without HTTP.</summary>
        public static async Task<IHost> StartCoordinatorAsync(string connectionString, string rabbitMq, string prefix, string storageRoot)
        {
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
            var busOptions = new BusOptions { RabbitMqUri = rabbitMq, Prefix = prefix };
            builder.Services.AddSingleton(busOptions);
            builder.Services.AddCoordinator(new DatabaseOptions(DatabaseProvider.Postgres, connectionString), new CoordinatorOptions(), new ShotStorage(storageRoot));
            builder.Services.AddMassTransit(bus =>
            {
                bus.AddCoordinatorConsumers();
                bus.UseFarmTransport(busOptions);
            });
            var host = builder.Build();
            await host.Services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
            await host.StartAsync();
            return host;
        }
    }

    /// <summary>End-to-end task throughput: many one-frame tasks through the whole farm (PostgreSQL, RabbitMQ, worker processes).</summary>
    public sealed record Throughput(int Tasks, double TasksPerSecond, Stats ReadyToClaimed, double SubmitSeconds, Stats DispatchedToClaimed, Stats ClaimedToReported, Stats ReportedToApplied, int SuccessCommits, double PlanBigSeconds, CpuMeter.Sample Cpu,
        double WorkerBusyFraction, double IdleGapSeconds, Stats Handover, IdleLatency Idle, Stats PreviewFirstDispatch, Stats PreviewSubmit, Stats BacklogCommits, double BacklogTasksPerSecond, double ColdTasksPerSecond)
    {
        /// <summary>Preview jobs submitted one after another behind the backlog.</summary>
        private const int PreviewJobs = 5;

        /// <summary>How long the farm's pace with the million-task backlog queued is counted for.</summary>
        public static readonly TimeSpan BacklogWindow = TimeSpan.FromSeconds(10);

        /// <summary>Single tasks timed from Ready to claimed on idle workers, as many as <c>--idle</c> times.</summary>
        public const int IdleSamples = 60;

        /// <summary>Single tasks run before those are timed.</summary>
        public const int IdleWarmUpSamples = 30;

        public static async Task<Throughput> MeasureAsync(string postgres, string rabbitMq, string workerDll, int workers, int slots, int frames)
        {
            var storage = Directory.CreateTempSubdirectory("pfilm-bench-throughput").FullName;
            var database = await Baselines.CreateDatabaseAsync(postgres, "pfilm_bench_tput");
            var prefix = $"tput{Guid.NewGuid().ToString("N")[..6]}-";
            using var coordinator = await FarmHost.StartCoordinatorAsync(database, rabbitMq, prefix, storage);
            using var processes = new WorkerProcesses(workerDll, rabbitMq, prefix, storage, workers, slots);
            await processes.StartAsync();
            var cpu = await CpuMeter.ForAsync(database, rabbitMq, processes.Ids);
            var spec = OneFrameTasks("throughput", frames);
            var contexts = coordinator.Services.GetRequiredService<IDbContextFactory<FarmDbContext>>();

            // Fresh processes spend much of their first minute compiling (tier-0, then tier-1 with PGO: dotnet-counters
            // showed ~38,000 methods JIT-compiled in the coordinator over the first run, perf showed 40% of the CPU
            // in the JIT). A farm's processes run for hours, so the measured job follows a warm-up job of the same shape.
            var warmUp = await coordinator.Services.GetRequiredService<JobSubmission>().SubmitAsync(spec with { Name = "warm-up" }, CancellationToken.None);
            await WaitForFramesAsync(contexts, warmUp.Id);
            var coldTasksPerSecond = await TasksPerSecondAsync(contexts, warmUp.Id);

            // Its assembly (ffmpeg encoding 2,400 frames on both cores) is no part of the measured job's window.
            await WaitForJobAsync(contexts, warmUp.Id);

            var submitted = Stopwatch.GetTimestamp();
            var job = await coordinator.Services.GetRequiredService<JobSubmission>().SubmitAsync(spec, CancellationToken.None);
            var submitSeconds = Stopwatch.GetElapsedTime(submitted).TotalSeconds;
            var cpuAtStart = cpu.Take();
            await WaitForFramesAsync(contexts, job.Id);
            var cpuUsed = cpu.Take() - cpuAtStart;

            // With the workers idle again (the job's assembly, 2,400 frames encoded on both cores, done too): how long
            // a task that becomes Ready waits for a worker to claim it. The single task's path is not the bundles'
            // the coordinator ran so far: as with --idle, the first samples, compiled as they run, are not counted.
            await WaitForJobAsync(contexts, job.Id);
            await IdleLatency.MeasureAsync(coordinator.Services, spec, IdleWarmUpSamples);
            var idle = await IdleLatency.MeasureAsync(coordinator.Services, spec, IdleSamples);
            var single = IdleLatency.Single(spec);

            var planning = Stopwatch.GetTimestamp();
            await coordinator.Services.GetRequiredService<JobSubmission>().SubmitAsync(BigJob("big"), CancellationToken.None);
            var planSeconds = Stopwatch.GetElapsedTime(planning).TotalSeconds;

            // A backlog of a million tasks (that job and 90 shots more, planned in the background) for the preview
            // job after it.
            var bigShot = spec.Shots[0] with { DurationSeconds = 10_000 / 24.0 };
            var backlog = spec with { Name = "backlog", Shots = [.. Enumerable.Range(0, 90).Select(i => bigShot with { Name = $"backlog-{i}" })] };
            using var probeStop = new CancellationTokenSource();
            var probe = CommitProbeAsync(database, probeStop.Token);
            var backlogJob = await coordinator.Services.GetRequiredService<JobSubmission>().SubmitAsync(backlog, CancellationToken.None);
            while (true)
            {
                await using var db = await contexts.CreateDbContextAsync();
                if (await db.Jobs.AnyAsync(j => j.Id == backlogJob.Id && j.State != Data.Entities.JobState.Planning))
                {
                    break;
                }

                await Task.Delay(500);
            }

            await probeStop.CancelAsync();
            var backlogCommits = await probe;

            // Several preview jobs, one after another: a single one measured a moment (3.40 s once, 0.25–0.53 s in
            // nine other runs), not the scheduler.
            var previewSeconds = new List<double>();
            var previewSubmitSeconds = new List<double>();
            for (var i = 0; i < PreviewJobs; i++)
            {
                await Task.Delay(1000);
                var submitWatch = Stopwatch.StartNew();
                var preview = await coordinator.Services.GetRequiredService<JobSubmission>().SubmitAsync(single with { Name = $"preview-{i}", Lane = Lane.Preview }, CancellationToken.None);
                previewSubmitSeconds.Add(submitWatch.Elapsed.TotalSeconds);
                while (true)
                {
                    await using var db = await contexts.CreateDbContextAsync();
                    var dispatched = await (
                        from task in db.Tasks
                        join attempt in db.Attempts on task.CurrentAttemptId equals attempt.Id
                        where task.JobId == preview.Id && task.Kind == "keyframe"
                        select new { task.ReadyAt, attempt.CreatedAt })
                        .FirstOrDefaultAsync();
                    if (dispatched is not null)
                    {
                        previewSeconds.Add((dispatched.CreatedAt - dispatched.ReadyAt!.Value).TotalSeconds);
                        // Each one with its moment, to be matched with the database's log (its checkpoints, its vacuums).
                        Console.WriteLine($"  preview {i + 1} of {PreviewJobs}: ready {dispatched.ReadyAt:HH:mm:ss.fff} UTC → dispatched in {Stats.Format(previewSeconds[^1])} (submission {Stats.Format(previewSubmitSeconds[^1])})");
                        break;
                    }

                    await Task.Delay(5);
                }
            }

            // The farm's pace with that backlog queued: every claim and success finds its task among a million rows.
            var backlogWindowStart = DateTime.UtcNow;
            await Task.Delay(BacklogWindow);
            await using var check = await contexts.CreateDbContextAsync();
            var backlogWindowEnd = backlogWindowStart + BacklogWindow;
            var backlogSucceeded = await check.Attempts.CountAsync(a => a.State == Data.Entities.AttemptState.Succeeded && a.FinishedAt >= backlogWindowStart && a.FinishedAt < backlogWindowEnd);
            var rows = await (
                from task in check.Tasks
                join attempt in check.Attempts on task.CurrentAttemptId equals attempt.Id
                where task.JobId == job.Id && task.Kind == "keyframe"
                select new { task.ReadyAt, attempt.CreatedAt, attempt.ClaimedAt, attempt.ReportedAt, attempt.FinishedAt, attempt.WorkerId, attempt.DeviceSeconds })
                .AsNoTracking()
                .ToListAsync();
            var first = rows.Min(r => r.ClaimedAt!.Value);
            var last = rows.Max(r => r.FinishedAt!.Value);

            // Each worker's slots were busy rendering for the sum of its attempts' device-seconds (one device each);
            // the rest of their time in the window went between tasks.
            var window = (last - first).TotalSeconds;
            var busy = rows.Sum(r => r.DeviceSeconds);
            var slotSeconds = workers * slots * window;
            await coordinator.StopAsync();

            // The workers are still rendering the backlog into the storage: they go first.
            processes.Dispose();
            Directory.Delete(storage, true);
            return new Throughput(
                rows.Count,
                rows.Count / (last - first).TotalSeconds,
                new Stats([.. rows.Select(r => (r.ClaimedAt!.Value - r.ReadyAt!.Value).TotalSeconds)]),
                submitSeconds,
                new Stats([.. rows.Select(r => (r.ClaimedAt!.Value - r.CreatedAt).TotalSeconds)]),
                new Stats([.. rows.Select(r => (r.ReportedAt!.Value - r.ClaimedAt!.Value).TotalSeconds)]),
                new Stats([.. rows.Select(r => (r.FinishedAt!.Value - r.ReportedAt!.Value).TotalSeconds)]),
                rows.Select(r => r.FinishedAt).Distinct().Count(),
                planSeconds,
                cpuUsed,
                busy / slotSeconds,
                (slotSeconds - busy) / rows.Count,
                new Stats(Handovers(rows.Select(r => (r.WorkerId!, r.ClaimedAt!.Value, Start: r.ReportedAt!.Value.AddSeconds(-r.DeviceSeconds), End: r.ReportedAt!.Value)))),
                idle,
                new Stats(previewSeconds),
                new Stats(previewSubmitSeconds),
                new Stats(backlogCommits),
                backlogSucceeded / BacklogWindow.TotalSeconds,
                coldTasksPerSecond);
        }

        /// <summary>
        /// One-row commits every 20 ms on a connection of their own until stopped: what any small transition of the
        /// farm (a claim, a dispatch, a submission) pays for its commit meanwhile.
        /// </summary>
        private static async Task<List<double>> CommitProbeAsync(string database, CancellationToken stop)
        {
            await using var connection = new NpgsqlConnection(database);
            await connection.OpenAsync(CancellationToken.None);
            await using (var create = new NpgsqlCommand("CREATE TABLE bench_commit_probe (id int PRIMARY KEY, n bigint NOT NULL); INSERT INTO bench_commit_probe VALUES (1, 0)", connection))
            {
                await create.ExecuteNonQueryAsync(CancellationToken.None);
            }

            await using var update = new NpgsqlCommand("UPDATE bench_commit_probe SET n = n + 1 WHERE id = 1", connection);
            var seconds = new List<double>();
            while (!stop.IsCancellationRequested)
            {
                var started = Stopwatch.GetTimestamp();
                await update.ExecuteNonQueryAsync(CancellationToken.None);
                seconds.Add(Stopwatch.GetElapsedTime(started).TotalSeconds);
                await Task.Delay(20, CancellationToken.None);
            }

            return seconds;
        }

        /// <summary>
        /// The worker's own gap between two attempts: for each attempt that was claimed and waiting when one of its
        /// worker's slots freed up, from that slot's last finish to this attempt's start (both on the worker's clock;
        /// one device per attempt, so the render began device-seconds before the report).
        /// </summary>
        private static double[] Handovers(IEnumerable<(string Worker, DateTime ClaimedAt, DateTime Start, DateTime End)> attempts) =>
            [.. attempts.GroupBy(a => a.Worker).SelectMany(worker =>
            {
                var finishes = worker.Select(a => a.End).Order().ToArray();
                return worker.Select(a =>
                {
                    var index = Array.BinarySearch(finishes, a.Start);
                    index = index >= 0 ? index : ~index - 1;
                    return index >= 0 && a.ClaimedAt <= finishes[index] ? (a.Start - finishes[index]).TotalSeconds : double.NaN;
                }).Where(gap => !double.IsNaN(gap));
            })];

        /// <summary>One 64×64 procedural shot planned as one-frame tasks.</summary>
        public static JobSpec OneFrameTasks(string name, int frames) => new("bench", name, Lane.Batch, 50, [new ShotSpec
        {
            Name = "many", Prompt = "a red ball rolling in the desert", DurationSeconds = frames / 24.0, Fps = 24, Width = 64, Height = 64,
            Steps = 1, Guidance = 0, Seed = 7, Engine = "procedural", KeyframeInterval = 1,
        }]);

        /// <summary>10 shots of 10,000 one-frame tasks (the spec's largest shot) plus their assemblies: 100,010 tasks.</summary>
        public static JobSpec BigJob(string name)
        {
            var spec = OneFrameTasks(name, 10_000);
            return spec with { Shots = [.. Enumerable.Range(0, 10).Select(i => spec.Shots[0] with { Name = $"{name}-{i}" })] };
        }

        public static async Task WaitForFramesAsync(IDbContextFactory<FarmDbContext> contexts, Guid jobId)
        {
            while (true)
            {
                await using var db = await contexts.CreateDbContextAsync();
                if (!await db.Tasks.AnyAsync(t => t.JobId == jobId && t.Kind == "keyframe" && t.State != Data.Entities.RenderTaskState.Succeeded))
                {
                    return;
                }

                await Task.Delay(200);
            }
        }

        /// <summary>
        /// Polls the job's state alone, not its status, on one context with a compiled query: the watching must not take
        /// the cores it measures (a new context and query translation every 20 ms was a fifth of the coordinator
        /// process's CPU during a diffusion batch).
        /// </summary>
        public static async Task WaitForJobAsync(IDbContextFactory<FarmDbContext> contexts, Guid jobId, int pollMilliseconds = 200)
        {
            await using var db = await contexts.CreateDbContextAsync();
            while (!await JobEnded(db, jobId))
            {
                await Task.Delay(pollMilliseconds);
            }
        }

        private static readonly Func<FarmDbContext, Guid, Task<bool>> JobEnded = EF.CompileAsyncQuery((FarmDbContext db, Guid jobId) =>
            db.Jobs.Any(j => j.Id == jobId && (j.State == Data.Entities.JobState.Succeeded || j.State == Data.Entities.JobState.Failed)));

        private static async Task<double> TasksPerSecondAsync(IDbContextFactory<FarmDbContext> contexts, Guid jobId)
        {
            await using var db = await contexts.CreateDbContextAsync();
            var attempts = db.Tasks.Where(t => t.JobId == jobId && t.Kind == "keyframe").Join(db.Attempts, t => t.CurrentAttemptId, a => a.Id, (t, a) => a);
            var count = await attempts.CountAsync();
            var window = (await attempts.MaxAsync(a => a.FinishedAt))!.Value - (await attempts.MinAsync(a => a.ClaimedAt))!.Value;
            return count / window.TotalSeconds;
        }
    }

    public sealed class WorkerProcesses(string dll, string rabbitMq, string prefix, string storageRoot, int count, int slots = 1) : IDisposable
    {
        private readonly List<Process> _processes = [];

        public IReadOnlyList<int> Ids => [.. _processes.Select(p => p.Id)];

        public async Task StartAsync()
        {
            for (var i = 0; i < count; i++)
            {
                var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
                start.ArgumentList.Add(dll);
                start.Environment["RabbitMq__Uri"] = rabbitMq;
                start.Environment["RabbitMq__Prefix"] = prefix;
                start.Environment["Storage__Root"] = storageRoot;
                start.Environment["Worker__Id"] = $"bench-{i}";
                start.Environment["Worker__DeviceCount"] = "1";
                start.Environment["Worker__Slots"] = slots.ToString(CultureInfo.InvariantCulture);
                var process = Process.Start(start)!;
                _processes.Add(process);
                while (await process.StandardOutput.ReadLineAsync() is { } line)
                {
                    if (line.Contains("Bus started", StringComparison.Ordinal))
                    {
                        break;
                    }
                }

                _ = process.StandardOutput.ReadToEndAsync();
            }
        }

        public void Dispose()
        {
            foreach (var process in _processes)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                process.Dispose();
            }

            _processes.Clear();
        }
    }

    public static class Runs
    {
        /// <summary>Submits a job and returns the seconds until it succeeded.</summary>
        public static async Task<double> RenderAsync(IServiceProvider services, JobSpec spec)
        {
            var started = Stopwatch.GetTimestamp();
            var job = await services.GetRequiredService<JobSubmission>().SubmitAsync(spec, CancellationToken.None);
            var reports = services.GetRequiredService<JobReports>();
            while (true)
            {
                var status = await reports.StatusAsync(job.Id, CancellationToken.None);
                if (status!.State == "Succeeded")
                {
                    return Stopwatch.GetElapsedTime(started).TotalSeconds;
                }

                if (status.State == "Failed")
                {
                    throw new InvalidOperationException($"benchmark job failed: {status.Error}");
                }

                await Task.Delay(20);
            }
        }
    }

    /// <summary>The coordinator's overhead per task, read from the timestamps it records.</summary>
    public sealed record Overheads(Stats ReadyToDispatched, Stats ReadyToClaimed, Stats DispatchedToClaimed, Stats SuccessToDependantsDispatched)
    {
        public static async Task<Overheads> MeasureAsync(IServiceProvider services)
        {
            await using var db = await services.GetRequiredService<IDbContextFactory<FarmDbContext>>().CreateDbContextAsync();
            var tasks = await db.Tasks.AsNoTracking().ToListAsync();
            var attempts = await db.Attempts.AsNoTracking().ToListAsync();
            var dependencies = await db.TaskDependencies.AsNoTracking().ToListAsync();
            var firstAttempt = attempts.GroupBy(a => a.TaskId).ToDictionary(g => g.Key, g => g.OrderBy(a => a.Number).First());
            var readyToDispatched = new List<double>();
            var readyToClaimed = new List<double>();
            var dispatchedToClaimed = new List<double>();
            var successToDispatched = new List<double>();
            foreach (var task in tasks.Where(t => t.ReadyAt is not null && firstAttempt.ContainsKey(t.Id)))
            {
                var attempt = firstAttempt[task.Id];
                readyToDispatched.Add((attempt.CreatedAt - task.ReadyAt!.Value).TotalSeconds);
                readyToClaimed.Add((attempt.ClaimedAt!.Value - task.ReadyAt.Value).TotalSeconds);
                dispatchedToClaimed.Add((attempt.ClaimedAt.Value - attempt.CreatedAt).TotalSeconds);
                var released = dependencies.Where(d => d.TaskId == task.Id).Select(d => firstAttempt[d.DependsOnTaskId].ReportedAt!.Value).DefaultIfEmpty().Max();
                if (released != default)
                {
                    successToDispatched.Add((attempt.CreatedAt - released).TotalSeconds);
                }
            }

            return new Overheads(new Stats(readyToDispatched), new Stats(readyToClaimed), new Stats(dispatchedToClaimed), new Stats(successToDispatched));
        }
    }
}
