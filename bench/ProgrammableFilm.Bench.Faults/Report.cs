using System.Globalization;
using System.Text;

namespace ProgrammableFilm.Bench.Faults;

/// <summary>The markdown the lead pastes into docs/reliability.md.</summary>
public static class Report
{
    public static string Markdown(Settings settings, FaultRun run, IReadOnlyList<ScenarioResult> results)
    {
        var target = settings.Lease.TotalSeconds + 5;
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"## Fault script ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores)");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"`{settings.CommandLine}`");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Farm: one API process (coordinator), {settings.Workers} worker processes (1 slot, 1 device each), PostgreSQL 15 and RabbitMQ 3.10 from `scripts/services.sh`. " +
            $"**Lease {settings.Lease.TotalSeconds:F0} s** (`Coordinator__LeaseDuration`, shortened from the 30 s default so that the script runs in minutes), heartbeat every {settings.Heartbeat.TotalSeconds:F0} s, " +
            $"{settings.JobTimeout.TotalSeconds:F0} s timeout per job. Each job: one diffusion shot, 64×64, 3 s at 24 fps (72 frames), keyframes every 12 frames, 20 steps: 14 tasks. " +
            $"Warm-up job {Seconds(run.WarmUpSeconds)} s; no-fault job time used to place faults {run.BaselineSeconds:F1} s.");
        text.AppendLine();
        text.AppendLine("| scenario | jobs completed / submitted | frames missing | attempts billed twice | fault → job succeeded (s) | scenario time (s) | notes |");
        text.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
        foreach (var result in results)
        {
            var jobs = result.Jobs;
            var recovered = jobs.Where(j => j.FaultToSuccessSeconds is not null).Select(j => j.FaultToSuccessSeconds!.Value).Order().ToList();
            var seconds = recovered.Count switch
            {
                0 => "—",
                1 => recovered[0].ToString("F1", CultureInfo.InvariantCulture),
                _ => $"median {recovered[recovered.Count / 2]:F1}, max {recovered[^1]:F1}",
            };
            var states = jobs.SelectMany(j => j.AttemptStates).GroupBy(s => s.Key, StringComparer.Ordinal).OrderByDescending(g => g.Sum(s => s.Value))
                .Select(g => $"{g.Key} {g.Sum(s => s.Value)}");
            var notes = jobs.Select((j, i) => (Job: i, j.Notes)).SelectMany(x => x.Notes.Select(n => jobs.Count > 1 ? $"#{x.Job + 1}: {n}" : n));
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {result.Scenario.Name}: {result.Scenario.Title} | {jobs.Count(j => j.Completed)}/{jobs.Count(j => j.Submitted)}{(jobs.Any(j => !j.Submitted) ? $" ({jobs.Count(j => !j.Submitted)} not submitted)" : "")} " +
                $"| {Sum(jobs.Select(j => j.MissingFrames))} | {Sum(jobs.Select(j => j.DoubleBilled))} | {seconds} | {result.WallSeconds:F0} " +
                $"| {(result.Passed ? "" : "**FAILED**; ")}attempts: {string.Join(", ", states)}{string.Concat(notes.Select(n => "; " + n)).Replace("|", "/", StringComparison.Ordinal)} |");
        }

        var recoveries = results.SelectMany(r => r.Jobs).SelectMany(j => j.Recoveries).ToList();

        // An attempt that finished just before its worker died had nothing to recover.
        var measured = recoveries.Where(r => r.Note != JobRun.FinishedBeforeKill).ToList();
        if (recoveries.Count > 0)
        {
            text.AppendLine();
            text.AppendLine(CultureInfo.InvariantCulture, $"Lost workers: from the kill to the task running again (claimed by another worker); target lease + 5 s = {target:F0} s.");
            text.AppendLine();
            text.AppendLine("| scenario | kill | at (s after submit) | killed worker | task it held | kill → task claimed again (s) | kill → `GET /api/workers` says lost (s) | within target |");
            text.AppendLine("| --- | --- | ---: | --- | --- | ---: | ---: | --- |");
            foreach (var r in recoveries)
            {
                text.AppendLine(CultureInfo.InvariantCulture,
                    $"| {r.Scenario} | {r.Kill} | {r.AtSeconds:F1} | {r.Worker} | {r.Task} | {Seconds(r.RerunSeconds)} | {Seconds(r.LostSeconds)} | {(r.Note == JobRun.FinishedBeforeKill ? "n/a" : r.RerunSeconds <= target ? "yes" : "**no**")}{(r.Note is null ? "" : $": {r.Note}")} |");
            }
        }

        text.AppendLine();
        var withinTarget = measured.Count(r => r.RerunSeconds <= target);
        text.AppendLine(CultureInfo.InvariantCulture,
            $"faults: {results.Count(r => r.Passed)}/{results.Count} scenarios passed (every job succeeded, no frame missing, nothing billed twice); " +
            $"{results.Sum(r => r.Jobs.Count(j => j.Completed))}/{results.Sum(r => r.Jobs.Count)} jobs completed; " +
            $"lost-worker reruns within lease + 5 s: {withinTarget}/{measured.Count}; {results.Sum(r => r.WallSeconds):F0} s");
        return text.ToString();
    }

    private static string Sum(IEnumerable<int?> values)
    {
        var list = values.ToList();
        return list.Any(v => v is null) ? $"{list.Sum() ?? 0}+?" : list.Sum()!.Value.ToString(CultureInfo.InvariantCulture);
    }

    private static string Seconds(double? seconds) => seconds?.ToString("F1", CultureInfo.InvariantCulture) ?? "—";
}
