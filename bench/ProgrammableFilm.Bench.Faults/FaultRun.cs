using System.Diagnostics;
using System.Globalization;

namespace ProgrammableFilm.Bench.Faults;

/// <summary>
/// Runs the scenarios: keeps a healthy farm, submits one fresh job per fault, waits for it under a hard timeout while the
/// fault runs beside it, then measures what the job lost.
/// </summary>
public sealed class FaultRun(Settings settings) : IAsyncDisposable
{
    public const string Project = "faults";

    private readonly string _runFolder = Directory.CreateTempSubdirectory("pfilm-faults-").FullName;
    private readonly string _runId = Guid.NewGuid().ToString("N")[..8];
    private int _generation;
    private int _jobs;

    public Settings Settings => settings;

    public Services Services { get; } = new(settings);

    public Farm? Farm { get; private set; }

    public FarmApi? Api { get; private set; }

    public FarmDatabase? Database { get; private set; }

    public double? WarmUpSeconds { get; private set; }

    /// <summary>The no-fault job time that spreads the kill moments over a run; the warm-up's until a baseline runs.</summary>
    public double BaselineSeconds { get; set; } = 5;

    public async Task<IReadOnlyList<ScenarioResult>> RunAsync(CancellationToken cancellationToken)
    {
        Log.Line($"run folder {_runFolder}; lease {settings.Lease:c}, heartbeat {settings.Heartbeat:c}, {settings.Workers} workers, job timeout {settings.JobTimeout.TotalSeconds:F0} s");
        var results = new List<ScenarioResult>();
        try
        {
            var warmUp = await RunJobAsync("warm-up", duplicateDelivery: false, fault: null, cancellationToken);
            if (!warmUp.Completed)
            {
                Log.Line($"the farm did not render a job without faults ({string.Join("; ", warmUp.Notes)}); logs in {_runFolder}/logs");
                return results;
            }

            WarmUpSeconds = warmUp.FaultToSuccessSeconds;
            BaselineSeconds = warmUp.FaultToSuccessSeconds ?? BaselineSeconds;
            foreach (var name in settings.Scenarios)
            {
                var scenario = Scenario.All.Single(s => s.Name == name);
                Log.Line($"== {scenario.Name}: {scenario.Title}");
                var started = Stopwatch.GetTimestamp();
                var jobs = await scenario.Run(this, cancellationToken);
                var result = new ScenarioResult(scenario, jobs, Stopwatch.GetElapsedTime(started).TotalSeconds);
                results.Add(result);
                Log.Line($"== {scenario.Name}: {(result.Passed ? "passed" : "FAILED")}, {jobs.Count(j => j.Completed)}/{jobs.Count} jobs completed in {result.WallSeconds:F1} s");
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Log.Line("interrupted; reporting the scenarios that finished");
        }

        return results;
    }

    /// <summary>Submits one job on a healthy farm, runs <paramref name="fault"/> beside it and measures the outcome.</summary>
    public async Task<JobOutcome> RunJobAsync(string label, bool duplicateDelivery, Func<JobRun, CancellationToken, Task<FaultReport>>? fault, CancellationToken cancellationToken)
    {
        Farm farm;
        try
        {
            await Services.EnsureUpAsync();
            farm = await EnsureFarmAsync(duplicateDelivery, cancellationToken);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or Npgsql.NpgsqlException)
        {
            Farm?.Dispose();
            Farm = null;
            Log.Line($"{label}: no farm: {e.Message}");
            return new JobOutcome { Notes = [$"the farm did not start: {e.Message}"] };
        }

        var started = Stopwatch.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.JobTimeout);
        var submittedAt = DateTime.UtcNow;
        Guid jobId;
        try
        {
            jobId = await Api!.SubmitAsync(Project, Spec(label, Interlocked.Increment(ref _jobs)), timeout.Token);
        }
        catch (Exception e) when (e is HttpRequestException or InvalidOperationException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            farm.Dirty = true;
            Log.Line($"{label}: submit failed: {e.Message}");
            return new JobOutcome { Notes = [$"submit failed: {e.Message}"], WallSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds };
        }

        Log.Line($"{label}: job {jobId} submitted");
        var job = new JobRun(this, farm, jobId, submittedAt);
        var faultTask = fault is null ? Task.FromResult(new FaultReport(submittedAt, [], [])) : fault(job, timeout.Token);
        var (last, succeededAt) = await WaitForJobAsync(jobId, faultTask, timeout.Token);

        var notes = new List<string>();
        FaultReport? report = null;
        var applied = true;
        try
        {
            report = await faultTask;
            notes.AddRange(report.Notes);
        }
        catch (FaultNotAppliedException e)
        {
            applied = false;
            notes.Add($"fault not applied: {e.Message}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            applied = false;
            notes.Add("the fault had not finished at the timeout");
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or HttpRequestException)
        {
            applied = false;
            farm.Dirty = true;
            notes.Add($"fault failed: {e.Message}");
        }

        cancellationToken.ThrowIfCancellationRequested();
        var completed = succeededAt is not null;
        if (!completed)
        {
            farm.Dirty = true;
            notes.Add($"not completed in {settings.JobTimeout.TotalSeconds:F0} s (last seen {last?.State ?? "nothing"}, {last?.TasksSucceeded ?? 0}/{last?.TasksTotal ?? 0} tasks)");
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await Api.ControlAsync(jobId, "cancel", cancel.Token);
        }
        else
        {
            // Late duplicates and re-sent outcomes would land now; the ledger is read after them.
            await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
        }

        var outcome = await MeasureAsync(jobId, cancellationToken) with
        {
            Submitted = true,
            Completed = completed,
            FaultApplied = applied,
            FaultToSuccessSeconds = completed && report is not null ? (succeededAt!.Value - report.At).TotalSeconds : null,
            WallSeconds = Stopwatch.GetElapsedTime(started).TotalSeconds,
            Recoveries = report?.Recoveries ?? [],
        };
        outcome = outcome with { Notes = [.. notes, .. outcome.Notes] };
        Log.Line($"{label}: {(completed ? $"succeeded {outcome.FaultToSuccessSeconds:F1} s after the fault (or the submission)" : "NOT completed")}, {outcome.MissingFrames?.ToString(CultureInfo.InvariantCulture) ?? "?"} frames missing, {outcome.DoubleBilled?.ToString(CultureInfo.InvariantCulture) ?? "?"} billed twice; {string.Join("; ", outcome.Notes)}");
        return outcome;
    }

    public ValueTask DisposeAsync()
    {
        Farm?.Dispose();
        Api?.Dispose();
        if (settings.Keep)
        {
            Log.Line($"kept {_runFolder} (logs/, storage/)");
        }
        else
        {
            Directory.Delete(_runFolder, recursive: true);
        }

        return ValueTask.CompletedTask;
    }

    private async Task<Farm> EnsureFarmAsync(bool duplicateDelivery, CancellationToken cancellationToken)
    {
        if (Farm is { Dirty: false } current && current.DuplicateDelivery == duplicateDelivery && current.WorkerIds.Count == settings.Workers)
        {
            return current;
        }

        Farm?.Dispose();
        Api?.Dispose();
        var generation = ++_generation;
        Log.Line($"starting farm {generation} (API + {settings.Workers} workers{(duplicateDelivery ? ", every message delivered twice" : "")})");
        var database = await FarmDatabase.CreateAsync(settings.PostgresAdmin, $"faults_{_runId}_g{generation}");
        Farm = await Farm.StartAsync(settings, _runFolder, generation, database, duplicateDelivery, cancellationToken);
        Api = new FarmApi(Farm.Api, Farm.AdminKey);
        Database = new FarmDatabase(database);
        return Farm;
    }

    /// <summary>Polls until the job succeeded with its fault done, or ended otherwise, or the timeout.</summary>
    private async Task<(JobSnapshot? Last, DateTime? SucceededAt)> WaitForJobAsync(Guid jobId, Task<FaultReport> fault, CancellationToken timeout)
    {
        JobSnapshot? last = null;
        try
        {
            while (true)
            {
                last = await Api!.JobAsync(jobId, timeout) ?? last;

                // Cancelled is a step of the cancel-and-retry scenario, so only an ended fault makes a state final.
                if (fault.IsCompleted && last?.State is "Succeeded")
                {
                    return (last, last.FinishedAt?.UtcDateTime ?? DateTime.UtcNow);
                }

                if (fault.IsCompleted && last?.State is "Failed" or "Cancelled")
                {
                    return (last, null);
                }

                await Task.Delay(200, timeout);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return (last, null);
        }
    }

    private async Task<JobOutcome> MeasureAsync(Guid jobId, CancellationToken cancellationToken)
    {
        var notes = new List<string>();
        var shots = await Database!.ShotsAsync(jobId, cancellationToken);
        int? missing = null;
        if (shots is null)
        {
            notes.Add("database unreachable after the job");
        }
        else
        {
            missing = 0;
            foreach (var shot in shots)
            {
                var frames = shot.VideoPath is null ? 0 : await Ffprobe.CountFramesAsync(Path.Combine(_runFolder, "storage", shot.VideoPath), cancellationToken);
                missing += Math.Max(0, shot.FrameCount - frames);
                if (frames > shot.FrameCount)
                {
                    notes.Add($"{shot.Name}: {frames} frames in the MP4, {shot.FrameCount} planned");
                }
            }
        }

        var billing = await Database.BillingAsync(jobId, cancellationToken);
        if (billing is { Total: > 0 })
        {
            notes.Add($"{billing.DuplicateAttemptRows} attempt(s) with several ledger rows, {billing.TasksSucceededTwice} task(s) billed as succeeded more than once");
        }

        return new JobOutcome
        {
            MissingFrames = missing,
            DoubleBilled = billing?.Total,
            AttemptStates = await Database.AttemptStatesAsync(jobId, cancellationToken) ?? new Dictionary<string, long>(),
            Notes = notes,
        };
    }

    /// <summary>One diffusion shot at 64×64: 3 s at 24 fps is 72 frames, keyframes every 12 frames make 14 tasks of about a second.</summary>
    private static string Spec(string label, int seed) => $"""
        project: {Project}
        name: "{label}"
        lane: batch
        shots:
          - name: shot
            prompt: a yellow boat sailing left to right on the ocean
            duration: 3
            fps: 24
            width: 64
            height: 64
            steps: 20
            guidance: 3.0
            seed: {seed}
            engine: diffusion
            keyframeInterval: 12
        """;
}
