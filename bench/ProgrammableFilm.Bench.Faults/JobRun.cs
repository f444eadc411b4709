namespace ProgrammableFilm.Bench.Faults;

/// <summary>One submitted job, as a fault sees it: when to strike, and what became of the work it hit.</summary>
public sealed class JobRun(FaultRun run, Farm farm, Guid id, DateTime submittedAt)
{
    public const string FinishedBeforeKill = "the attempt finished before the kill took effect";

    public Guid Id => id;

    public DateTime SubmittedAt => submittedAt;

    public Farm Farm => farm;

    public FaultRun Run => run;

    public double SecondsSinceSubmit => (DateTime.UtcNow - submittedAt).TotalSeconds;

    /// <summary>
    /// Waits until <paramref name="afterSeconds"/> after submission and then until a worker holds one of the job's attempts
    /// (mid-render); returns the held attempts. Fails as not applied if the job ends first.
    /// </summary>
    public async Task<List<HeldAttempt>> WaitForHeldAsync(double afterSeconds, CancellationToken cancellationToken)
    {
        var due = submittedAt.AddSeconds(afterSeconds);
        if (due > DateTime.UtcNow)
        {
            await Task.Delay(due - DateTime.UtcNow, cancellationToken);
        }

        while (true)
        {
            if (await run.Database!.HeldAttemptsAsync(id, cancellationToken) is { Count: > 0 } held)
            {
                return held;
            }

            if (await run.Database.JobStateAsync(id, cancellationToken) is "Succeeded" or "Failed" or "Cancelled")
            {
                throw new FaultNotAppliedException($"the job ended before any task was in flight after {afterSeconds:F1} s");
            }

            await Task.Delay(25, cancellationToken);
        }
    }

    /// <summary>
    /// Waits until <paramref name="fraction"/> of the job's tasks succeeded and then until a worker holds one of its
    /// attempts. Progress, not time, places the fault: a loaded machine stretches a run, and a kill timed by a quiet
    /// run's clock would land after the job ended.
    /// </summary>
    public async Task<List<HeldAttempt>> WaitForProgressAsync(double fraction, CancellationToken cancellationToken)
    {
        while ((await run.Database!.ProgressAsync(id, cancellationToken) ?? 0) < fraction)
        {
            if (await run.Database.JobStateAsync(id, cancellationToken) is "Succeeded" or "Failed" or "Cancelled")
            {
                throw new FaultNotAppliedException($"the job ended before {fraction:P0} of its tasks succeeded");
            }

            await Task.Delay(25, cancellationToken);
        }

        return await WaitForHeldAsync(0, cancellationToken);
    }

    /// <summary>
    /// After a kill: for each attempt the dead workers held, the time until its task was claimed again (from the attempt
    /// rows), and the time until <c>GET /api/workers</c> shows each dead worker as lost. Ends when everything is known, the
    /// job ends, or the scenario times out (unknown times stay null).
    /// </summary>
    public async Task<List<Recovery>> TrackRecoveryAsync(string scenario, string kill, DateTime killedAt, IReadOnlyList<HeldAttempt> held, IReadOnlyCollection<string> deadWorkers, CancellationToken cancellationToken)
    {
        var fates = new Dictionary<Guid, AttemptFate>();
        var lostAt = new Dictionary<string, DateTime>(StringComparer.Ordinal);
        var atSeconds = (killedAt - submittedAt).TotalSeconds;
        try
        {
            while (true)
            {
                if (await run.Database!.FatesAsync([.. held.Select(a => a.Id)], cancellationToken) is { } rows)
                {
                    foreach (var fate in rows)
                    {
                        fates[fate.Id] = fate;
                    }
                }

                if (await run.Api!.WorkersAsync(cancellationToken) is { } workers)
                {
                    foreach (var worker in workers.Where(w => deadWorkers.Contains(w.Id) && string.Equals(w.State, "lost", StringComparison.OrdinalIgnoreCase)))
                    {
                        lostAt.TryAdd(worker.Id, DateTime.UtcNow);
                    }
                }

                var rerunKnown = held.All(a => fates.TryGetValue(a.Id, out var f) && (f.RerunClaimedAt is not null || f.State == "Succeeded"));
                var lostKnown = !run.Api.HasWorkersEndpoint || deadWorkers.All(lostAt.ContainsKey);
                if ((rerunKnown && lostKnown) || await run.Database.JobStateAsync(id, cancellationToken) is "Succeeded" or "Failed" or "Cancelled")
                {
                    break;
                }

                await Task.Delay(100, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }

        return [.. held.Select(a =>
        {
            var fate = fates.GetValueOrDefault(a.Id);
            var note = fate switch
            {
                { State: "Succeeded" } => FinishedBeforeKill,
                null => "attempt not found",
                { RerunClaimedAt: null } => $"not run again (attempt {fate.State})",
                _ => null,
            };
            return new Recovery(
                scenario,
                kill,
                atSeconds,
                $"{a.WorkerId}",
                a.TaskKey,
                fate?.RerunClaimedAt is { } rerun ? (rerun - killedAt).TotalSeconds : null,
                a.WorkerId is not null && lostAt.TryGetValue(a.WorkerId, out var lost) ? (lost - killedAt).TotalSeconds : null,
                note);
        })];
    }
}
