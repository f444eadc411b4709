using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// Plans a job of <see cref="CoordinatorOptions.PlanningWarmUpTasks"/> one-frame tasks a few times at the start, each
/// rolled back, so that the first big job a studio submits is not the one that compiles the submission path: a fresh
/// process planned its first 100,010-task job in 2.9–3.2 s, a warm one in 1.1–1.7 s, the difference being the tasks'
/// binary COPY and the planner compiled to optimised code after millions of calls. PostgreSQL only: embedded farms
/// run small jobs through EF. A failure is logged and forgotten; the first real job then compiles the path itself.
/// </summary>
public sealed class PlanningWarmUp(
    JobSubmission submission,
    DatabaseOptions database,
    CoordinatorOptions options,
    ILogger<PlanningWarmUp> logger) : BackgroundService
{
    /// <summary>Tier-1 code replaces tier-0 in the background between rehearsals; the third found almost nothing new.</summary>
    private const int Rehearsals = 3;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.PlanningWarmUpTasks <= 0 || database.Provider != DatabaseProvider.Postgres)
        {
            return;
        }

        try
        {
            var started = Stopwatch.GetTimestamp();
            for (var rehearsal = 0; rehearsal < Rehearsals; rehearsal++)
            {
                await submission.RehearseAsync(Spec(options.PlanningWarmUpTasks), stoppingToken);
            }

            logger.LogInformation("Planning warmed up: {Rehearsals} jobs of {Tasks} tasks planned and rolled back in {Seconds:F2} s",
                Rehearsals, options.PlanningWarmUpTasks, Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
        catch (Exception e) when (!stoppingToken.IsCancellationRequested)
        {
            logger.LogWarning(e, "Planning warm-up failed; the first big job compiles the submission path itself");
        }
    }

    /// <summary>Shots of up to the spec's longest at 24 fps, one task per frame, as a big job's are.</summary>
    internal static JobSpec Spec(int tasks)
    {
        var framesPerShot = Math.Min(tasks, SpecLimits.MaxFramesPerShot);
        var shots = Math.Max(1, tasks / framesPerShot);
        return new JobSpec("planning-warm-up", "planning warm-up", Lane.Batch, 0, [.. Enumerable.Range(0, shots).Select(i => new ShotSpec
        {
            Name = $"warm-up-{i}", Prompt = "planning warm-up", DurationSeconds = framesPerShot / 24.0, Fps = 24, Width = 64, Height = 64,
            Steps = 1, Guidance = 0, Seed = 1, Engine = "procedural", KeyframeInterval = 1,
        })]);
    }
}
