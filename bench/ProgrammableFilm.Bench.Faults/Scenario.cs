using System.Diagnostics;

namespace ProgrammableFilm.Bench.Faults;

/// <summary>One row of the table: a fault, injected into one or more fresh jobs.</summary>
public sealed record Scenario(string Name, string Title, Func<FaultRun, CancellationToken, Task<IReadOnlyList<JobOutcome>>> Run)
{
    /// <summary>Faults strike this far into a no-fault run (at least one task in flight), except where a scenario says otherwise.</summary>
    private const double MidJob = 0.4;

    public static IReadOnlyList<Scenario> All { get; } =
    [
        new("baseline", "no fault", Baseline),
        new("kill-worker", "kill -9 of the worker holding a task, at moments spread over the run; a replacement starts", KillWorker),
        new("kill-all-workers", "kill -9 of every worker mid-job; new ones start", One("kill-all-workers", KillAllWorkers)),
        new("rabbitmq-app-restart", "RabbitMQ stop_app, 5 s, start_app", One("rabbitmq-app-restart", RabbitMqAppRestart)),
        new("rabbitmq-node-restart", "RabbitMQ node stopped and started (services.sh rabbitmq-stop/rabbitmq-start)", One("rabbitmq-node-restart", RabbitMqNodeRestart)),
        new("postgres-restart", "PostgreSQL fast restart (pg-stop; pg-start)", One("postgres-restart", PostgresRestart)),
        new("postgres-outage", "PostgreSQL down for 60 s", One("postgres-outage", PostgresOutage)),
        new("duplicate-delivery", "every message sent or published twice (Faults__DuplicateDelivery=true)", DuplicateDelivery),
        new("cancel-retry", "cancel mid-render, then retry", One("cancel-retry", CancelThenRetry)),
        new("kill-api", "kill -9 of the API (coordinator) process mid-job; it starts again", One("kill-api", KillApi)),
    ];

    private static Func<FaultRun, CancellationToken, Task<IReadOnlyList<JobOutcome>>> One(string name, Func<JobRun, CancellationToken, Task<FaultReport>> fault) =>
        async (run, cancellationToken) => [await run.RunJobAsync(name, duplicateDelivery: false, fault, cancellationToken)];

    private static async Task<IReadOnlyList<JobOutcome>> Baseline(FaultRun run, CancellationToken cancellationToken)
    {
        var outcome = await run.RunJobAsync("baseline", duplicateDelivery: false, fault: null, cancellationToken);
        if (outcome.FaultToSuccessSeconds is { } seconds)
        {
            run.BaselineSeconds = seconds;
        }

        return [outcome];
    }

    private static async Task<IReadOnlyList<JobOutcome>> DuplicateDelivery(FaultRun run, CancellationToken cancellationToken) =>
        [await run.RunJobAsync("duplicate-delivery", duplicateDelivery: true, fault: null, cancellationToken)];

    private static async Task<IReadOnlyList<JobOutcome>> KillWorker(FaultRun run, CancellationToken cancellationToken)
    {
        var moments = run.Settings.KillMoments;
        var outcomes = new List<JobOutcome>();
        for (var i = 0; i < moments; i++)
        {
            var kill = $"{i + 1}/{moments}";
            // Spread over the job's progress up to 80%: the last tasks (assembly) are too short to be hit reliably.
            var at = 0.8 * (i + 0.5) / moments;
            outcomes.Add(await run.RunJobAsync($"kill-worker {kill}", duplicateDelivery: false, (job, token) => KillHolderAsync(job, kill, at, token), cancellationToken));
        }

        return outcomes;
    }

    /// <summary>
    /// Kills the worker holding one of the job's attempts. A kill can land just after that attempt finished; then it hit
    /// no task, so it is repeated (at most three kills per job).
    /// </summary>
    private static async Task<FaultReport> KillHolderAsync(JobRun job, string kill, double at, CancellationToken cancellationToken)
    {
        var misses = new List<string>();
        for (var tries = 0; tries < 3; tries++)
        {
            var held = await job.WaitForProgressAsync(at, cancellationToken);
            // The newest claim, a segment if there is one: the attempt least likely to finish before the kill lands.
            var candidates = held.Where(a => job.Farm.HasWorker(a.WorkerId)).ToList();
            var victim = (candidates.LastOrDefault(a => a.TaskKey.StartsWith("seg", StringComparison.Ordinal)) ?? candidates.LastOrDefault())?.WorkerId
                ?? throw new FaultNotAppliedException($"no held attempt belongs to a worker of this farm ({string.Join(", ", held.Select(a => a.WorkerId))})");
            var pid = job.Farm.WorkerPid(victim);
            var killedAt = await job.Farm.KillWorkerAsync(victim);
            Log.Line($"kill-worker {kill}: killed {victim} (pid {pid}) at {job.SecondsSinceSubmit:F1} s, holding {string.Join(", ", held.Where(a => a.WorkerId == victim).Select(a => a.TaskKey))}");
            var report = await AfterKillAsync(job, "kill-worker", kill, killedAt, held, [victim], replacements: 1, cancellationToken);
            if (report.Recoveries.Any(r => r.Note != JobRun.FinishedBeforeKill))
            {
                return report with { Notes = misses };
            }

            misses.Add($"kill of {victim} at {(killedAt - job.SubmittedAt).TotalSeconds:F1} s missed (its task had finished)");
        }

        throw new FaultNotAppliedException(string.Join("; ", misses));
    }

    private static async Task<FaultReport> KillAllWorkers(JobRun job, CancellationToken cancellationToken)
    {
        var held = await job.WaitForHeldAsync(job.Run.BaselineSeconds * MidJob, cancellationToken);
        var victims = job.Farm.WorkerIds;
        var killedAt = DateTime.UtcNow;
        await Task.WhenAll(victims.Select(job.Farm.KillWorkerAsync));
        Log.Line($"kill-all-workers: killed {string.Join(", ", victims)} at {job.SecondsSinceSubmit:F1} s, holding {string.Join(", ", held.Select(a => a.TaskKey))}");
        return await AfterKillAsync(job, "kill-all-workers", "all", killedAt, held, victims, replacements: victims.Count, cancellationToken);
    }

    /// <summary>Starts the replacements and measures recovery; attempts claimed between the look-up and the kill count too.</summary>
    private static async Task<FaultReport> AfterKillAsync(JobRun job, string scenario, string kill, DateTime killedAt, List<HeldAttempt> held, IReadOnlyList<string> victims, int replacements, CancellationToken cancellationToken)
    {
        var replacing = Task.WhenAll(Enumerable.Range(0, replacements).Select(_ => job.Farm.StartWorkerAsync(cancellationToken)));
        if (await job.Run.Database!.HeldAttemptsAsync(job.Id, cancellationToken) is { } after)
        {
            held.AddRange(after.Where(a => victims.Contains(a.WorkerId!) && held.All(h => h.Id != a.Id)));
        }

        var recoveries = await job.TrackRecoveryAsync(scenario, kill, killedAt, [.. held.Where(a => victims.Contains(a.WorkerId!))], victims, cancellationToken);
        await replacing;
        return new FaultReport(killedAt, [], recoveries);
    }

    private static async Task<FaultReport> RabbitMqAppRestart(JobRun job, CancellationToken cancellationToken)
    {
        await job.WaitForHeldAsync(job.Run.BaselineSeconds * MidJob, cancellationToken);
        var at = DateTime.UtcNow;
        var down = Stopwatch.StartNew();
        try
        {
            await job.Run.Services.RabbitMqStopAppAsync();
            await Task.Delay(TimeSpan.FromSeconds(5), cancellationToken);
        }
        finally
        {
            await job.Run.Services.RabbitMqStartAppAsync();
        }

        return new FaultReport(at, [$"broker down {down.Elapsed.TotalSeconds:F1} s"], []);
    }

    private static async Task<FaultReport> RabbitMqNodeRestart(JobRun job, CancellationToken cancellationToken)
    {
        await job.WaitForHeldAsync(job.Run.BaselineSeconds * MidJob, cancellationToken);
        var at = DateTime.UtcNow;
        var down = Stopwatch.StartNew();
        try
        {
            await job.Run.Services.RabbitMqStopNodeAsync();
        }
        finally
        {
            await job.Run.Services.RabbitMqStartNodeAsync();
        }

        return new FaultReport(at, [$"node down {down.Elapsed.TotalSeconds:F1} s"], []);
    }

    private static Task<FaultReport> PostgresRestart(JobRun job, CancellationToken cancellationToken) => PostgresDownAsync(job, TimeSpan.Zero, cancellationToken);

    private static Task<FaultReport> PostgresOutage(JobRun job, CancellationToken cancellationToken) => PostgresDownAsync(job, TimeSpan.FromSeconds(60), cancellationToken);

    private static async Task<FaultReport> PostgresDownAsync(JobRun job, TimeSpan outage, CancellationToken cancellationToken)
    {
        await job.WaitForHeldAsync(job.Run.BaselineSeconds * MidJob, cancellationToken);
        var at = DateTime.UtcNow;
        var down = Stopwatch.StartNew();
        try
        {
            await job.Run.Services.PostgresStopAsync();
            await Task.Delay(outage, cancellationToken);
        }
        finally
        {
            await job.Run.Services.PostgresStartAsync();
        }

        return new FaultReport(at, [$"database down {down.Elapsed.TotalSeconds:F1} s"], []);
    }

    /// <summary>Cancel must stop the job (no attempt left running) before the retry; the retry must then render all of it.</summary>
    private static async Task<FaultReport> CancelThenRetry(JobRun job, CancellationToken cancellationToken)
    {
        await job.WaitForHeldAsync(job.Run.BaselineSeconds * MidJob, cancellationToken);
        var at = DateTime.UtcNow;
        if (await job.Run.Api!.ControlAsync(job.Id, "cancel", cancellationToken) is { } cancelError)
        {
            throw new FaultNotAppliedException(cancelError);
        }

        while (await job.Run.Api.JobAsync(job.Id, cancellationToken) is not { State: "Cancelled" }
            || await job.Run.Database!.HeldAttemptsAsync(job.Id, cancellationToken) is not { Count: 0 })
        {
            await Task.Delay(100, cancellationToken);
        }

        var stopped = (DateTime.UtcNow - at).TotalSeconds;
        if (await job.Run.Api.ControlAsync(job.Id, "retry", cancellationToken) is { } retryError)
        {
            throw new FaultNotAppliedException(retryError);
        }

        return new FaultReport(at, [$"cancelled, nothing running, {stopped:F1} s after the cancel"], []);
    }

    private static async Task<FaultReport> KillApi(JobRun job, CancellationToken cancellationToken)
    {
        await job.WaitForHeldAsync(job.Run.BaselineSeconds * MidJob, cancellationToken);
        var at = DateTime.UtcNow;
        await job.Farm.KillApiAsync();
        await job.Farm.StartApiAsync(cancellationToken);
        return new FaultReport(at, [$"API back (healthz) {(DateTime.UtcNow - at).TotalSeconds:F1} s after the kill"], []);
    }
}
