using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>What a CI system sees when it drives the farm with <c>pfilm</c>: progress, exit codes, one-line errors.</summary>
public class CliFarmTests(FarmProcessesFixture farm) : IClassFixture<FarmProcessesFixture>
{
    [Fact]
    public async Task Submit_and_wait_exits_0_when_the_job_succeeds_and_status_shows_it()
    {
        var (exitCode, stdout, stderr) = await PfilmAsync("submit", "examples/racing-at-dusk.yaml", "--server", farm.Server.ToString(), "--wait");

        Assert.True(exitCode == 0, $"exit {exitCode}\n{stdout}\n{stderr}\n{farm.Output}");
        var jobId = Regex.Match(stdout, @"Submitted job ([0-9a-f-]{36})").Groups[1].Value;
        Assert.Contains("racing-at-dusk: Succeeded", stdout, StringComparison.Ordinal);
        var video = Regex.Match(stdout, @"MP4:\s+(\S+)").Groups[1].Value;
        Assert.Equal(72, (await FfprobeResult.ProbeAsync(Path.Combine(farm.StorageRoot, video))).Frames);

        var status = await PfilmAsync("status", jobId, "--server", farm.Server.ToString());
        Assert.Equal(0, status.ExitCode);
        Assert.Contains("Succeeded", status.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("14/14 tasks", status.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Submit_and_wait_exits_1_with_the_reason_when_a_task_fails()
    {
        var spec = Path.Combine(farm.StorageRoot, "diffusion.yaml");
        await File.WriteAllTextAsync(spec, """
            project: ci
            shots:
              - {name: broken-node, prompt: a red ball, duration: 1, fps: 4, width: 64, height: 64, engine: diffusion, steps: 2}
            """);

        var (exitCode, stdout, stderr) = await PfilmAsync("submit", spec, "--server", farm.Server.ToString(), "--wait");

        Assert.True(exitCode == 1, $"exit {exitCode}\n{stdout}\n{stderr}");
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("failed", StringComparison.Ordinal));
        Assert.StartsWith("pfilm: job ", line, StringComparison.Ordinal);
        Assert.Contains("no-such-model.safetensors", line, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_spec_the_server_rejects_exits_2_and_an_unreachable_server_exits_3()
    {
        var spec = Path.Combine(farm.StorageRoot, "bad.yaml");
        await File.WriteAllTextAsync(spec, "project: ci\nshots:\n  - {name: s, prompt: p, duration: 1, fps: 500, width: 64, height: 64}\n");

        var invalid = await PfilmAsync("submit", spec, "--server", farm.Server.ToString());
        var unreachable = await PfilmAsync("status", Guid.NewGuid().ToString(), "--server", "http://127.0.0.1:1");
        var missing = await PfilmAsync("status", Guid.NewGuid().ToString(), "--server", farm.Server.ToString());

        Assert.Equal(2, invalid.ExitCode);
        Assert.Contains("shots[0].fps", invalid.StandardError, StringComparison.Ordinal);
        Assert.Equal(3, unreachable.ExitCode);
        Assert.Contains(unreachable.StandardError.Split('\n'), l => l.StartsWith("pfilm: cannot talk to the server", StringComparison.Ordinal));
        Assert.Equal(4, missing.ExitCode);
        Assert.All(new[] { invalid, unreachable, missing }, run => Assert.DoesNotContain("   at ", run.StandardError, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Quote_prints_a_table_of_the_specs_shots_and_a_bad_spec_is_one_line_and_exit_2()
    {
        var quote = await PfilmAsync("quote", "examples/racing-at-dusk.yaml", "--server", farm.Server.ToString());

        Assert.True(quote.ExitCode == 0, $"exit {quote.ExitCode}\n{quote.StandardOutput}\n{quote.StandardError}");
        Assert.Contains("racing-at-dusk", quote.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("procedural", quote.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("total", quote.StandardOutput, StringComparison.Ordinal);
        Assert.Matches(@"Priced at \$0\.0400 per cpu device-hour; energy [0-9.]+ kWh; ", quote.StandardOutput);

        var spec = Path.Combine(farm.StorageRoot, "bad-quote.yaml");
        await File.WriteAllTextAsync(spec, "project: ci\nshots:\n  - {name: s, prompt: p, duration: 1, fps: 500, width: 64, height: 64}\n");
        var invalid = await PfilmAsync("quote", spec, "--server", farm.Server.ToString());
        Assert.Equal(2, invalid.ExitCode);
        var line = Assert.Single(invalid.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("pfilm: ", line, StringComparison.Ordinal);
        Assert.Contains("shots[0].fps", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Job_control_verbs_and_logs_follow_the_exit_code_contract()
    {
        var server = farm.Server.ToString();
        var submitted = await PfilmAsync("submit", "examples/racing-at-dusk.yaml", "--server", server);
        var jobId = Regex.Match(submitted.StandardOutput, @"Submitted job ([0-9a-f-]{36})").Groups[1].Value;

        var pause = await PfilmAsync("pause", jobId, "--server", server);
        var cancel = await PfilmAsync("cancel", jobId, "--server", server);
        var cancelAgain = await PfilmAsync("cancel", jobId, "--server", server);
        var retry = await PfilmAsync("retry", jobId, "--server", server);

        Assert.True(pause.ExitCode == 0, pause.StandardError);
        Assert.True(cancel.ExitCode == 0, cancel.StandardError);
        Assert.Contains("Cancelled", cancel.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(5, cancelAgain.ExitCode);
        Assert.StartsWith("pfilm: cannot cancel: ", cancelAgain.StandardError, StringComparison.Ordinal);
        Assert.True(retry.ExitCode == 0, retry.StandardError);

        using var http = new HttpClient { BaseAddress = farm.Server }.WithKey(farm.AdminKey);
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!(await http.GetStringAsync($"/api/jobs/{jobId}")).Contains("\"state\":\"Succeeded\"", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} did not succeed after retry:\n{farm.Output}");
            await Task.Delay(250);
        }

        var logs = await PfilmAsync("logs", jobId, "--task", "assemble", "--server", server);
        var noSuchTask = await PfilmAsync("logs", jobId, "--task", "kf-99999", "--server", server);
        var resumeRunning = await PfilmAsync("resume", jobId, "--server", server);
        var unknownJob = await PfilmAsync("pause", Guid.NewGuid().ToString(), "--server", server);

        Assert.True(logs.ExitCode == 0, logs.StandardError);
        Assert.Contains("assemble attempt 1 (Succeeded on farm-worker)", logs.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("claimed by worker farm-worker", logs.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(4, noSuchTask.ExitCode);
        Assert.Equal(5, resumeRunning.ExitCode);
        Assert.Equal(4, unknownJob.ExitCode);
        Assert.All(new[] { pause, cancel, cancelAgain, retry, logs, noSuchTask, resumeRunning, unknownJob }, run => Assert.DoesNotContain("   at ", run.StandardError, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Takes_approve_reject_and_iterate_review_a_sweep_on_the_farm_and_follow_the_exit_code_contract()
    {
        var server = farm.Server.ToString();
        var spec = Path.Combine(farm.StorageRoot, "takes.yaml");
        await File.WriteAllTextAsync(spec, """
            project: ci
            shots:
              - {name: takes, prompt: a red ball rolling left to right, duration: 1, fps: 4, width: 64, height: 64, engine: procedural, variants: {grid: {seed: [1, 2, 3]}}}
            """);
        var submitted = await PfilmAsync("submit", spec, "--server", server, "--wait");
        Assert.True(submitted.ExitCode == 0, $"{submitted.StandardOutput}\n{submitted.StandardError}\n{farm.Output}");
        using var http = new HttpClient { BaseAddress = farm.Server }.WithKey(farm.AdminKey);
        var job = await http.GetFromJsonAsync<Coordinator.JobStatus>($"/api/jobs/{Regex.Match(submitted.StandardOutput, @"Submitted job ([0-9a-f-]{36})").Groups[1].Value}", Coordinator.SpecJson.Options);
        var takes = job!.Shots.Select(s => s.Id.ToString()).ToList();

        var before = await PfilmAsync("takes", takes[0], "--server", server);
        var approve = await PfilmAsync("approve", takes[1], "--note", "best", "--reject-others", "too dark", "--server", server);
        var approveAgain = await PfilmAsync("approve", takes[1], "--server", server);
        var rejectCurrent = await PfilmAsync("reject", takes[1], "--note", "no", "--server", server);
        var unknownParameter = await PfilmAsync("iterate", takes[0], "--vary", "colour=red", "--server", server);
        var iterate = await PfilmAsync("iterate", takes[0], "--vary", "seed=9", "--wait", "--server", server);
        var after = await PfilmAsync("takes", takes[2], "--server", server);
        var missing = await PfilmAsync("takes", Guid.NewGuid().ToString(), "--server", server);

        Assert.True(before.ExitCode == 0, before.StandardError);
        Assert.Contains("3 take(s); current version: none", before.StandardOutput, StringComparison.Ordinal);
        Assert.True(approve.ExitCode == 0, approve.StandardError);
        Assert.Contains("current version: v1 = take 2", approve.StandardOutput, StringComparison.Ordinal);
        Assert.True(iterate.ExitCode == 0, $"{iterate.StandardOutput}\n{iterate.StandardError}");
        Assert.Contains("Submitted iteration job", iterate.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("takes#4", iterate.StandardOutput, StringComparison.Ordinal);
        Assert.True(after.ExitCode == 0, after.StandardError);
        Assert.Contains("4 take(s); current version: v1 = take 2", after.StandardOutput, StringComparison.Ordinal);
        foreach (var (run, exitCode, says) in new[] { (approveAgain, 5, "already the current version"), (rejectCurrent, 5, "is the current version"), (unknownParameter, 2, "variants.grid.colour"), (missing, 4, "there is no") })
        {
            Assert.Equal(exitCode, run.ExitCode);
            var line = Assert.Single(run.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("pfilm: ", line, StringComparison.Ordinal);
            Assert.Contains(says, line, StringComparison.Ordinal);
        }

        var iterated = await http.GetFromJsonAsync<Coordinator.Takes.ShotTakes>($"/api/shots/{takes[0]}/takes", Coordinator.SpecJson.Options);
        Assert.Equal((4, 9L, "Succeeded"), (iterated!.Takes[^1].Number, iterated.Takes[^1].Parameters.Seed, iterated.Takes[^1].State));
        Assert.Equal(Guid.Parse(takes[1]), iterated.Takes[^1].ParentTakeId);
        Assert.Equal([("rejected", "too dark"), ("approved", "best"), ("rejected", "too dark"), ("pending", null)], iterated.Takes.Select(t => (t.Review, t.ReviewNote)));
    }

    [Fact]
    public async Task Jobs_and_workers_list_the_farm_one_line_each()
    {
        var server = farm.Server.ToString();
        var submitted = await PfilmAsync("submit", "examples/racing-at-dusk.yaml", "--server", server);
        var jobId = Regex.Match(submitted.StandardOutput, @"Submitted job ([0-9a-f-]{36})").Groups[1].Value;

        var jobs = await PfilmAsync("jobs", "examples", "--server", server);
        var workers = await PfilmAsync("workers", "--server", server);
        var badLimit = await PfilmAsync("jobs", "examples", "--limit", "0", "--server", server);

        Assert.True(jobs.ExitCode == 0, jobs.StandardError);
        Assert.Contains(jobId, jobs.StandardOutput, StringComparison.Ordinal);
        Assert.True(workers.ExitCode == 0, workers.StandardError);
        Assert.Contains("farm-worker", workers.StandardOutput, StringComparison.Ordinal);
        Assert.Matches(@"1 worker\(s\): \d busy, \d idle, 0 lost", workers.StandardOutput);
        Assert.Equal(2, badLimit.ExitCode);
    }

    [Fact]
    public async Task Spend_and_budget_print_the_projects_money_and_bad_input_is_one_line_and_exit_2()
    {
        var server = farm.Server.ToString();
        var submitted = await PfilmAsync("submit", "examples/racing-at-dusk.yaml", "--server", server, "--wait");
        Assert.True(submitted.ExitCode == 0, submitted.StandardError);

        var bySku = await PfilmAsync("spend", "examples", "--group-by", "sku", "--server", server);
        var byDay = await PfilmAsync("spend", "examples", "--from", DateTime.UtcNow.AddDays(-1).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), "--server", server);
        var budget = await PfilmAsync("budget", "examples", "--limit", "1000", "--server", server);
        var badGroup = await PfilmAsync("spend", "examples", "--group-by", "week", "--server", server);
        var badTime = await PfilmAsync("spend", "examples", "--from", "yesterday", "--server", server);
        var badLimit = await PfilmAsync("budget", "examples", "--limit", "0", "--server", server);
        var absurdLimit = await PfilmAsync("budget", "examples", "--limit", "5000000000", "--server", server);

        Assert.True(bySku.ExitCode == 0, bySku.StandardError);
        Assert.Contains("cpu", bySku.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("total", bySku.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("CO2e (g)", bySku.StandardOutput, StringComparison.Ordinal);
        Assert.True(byDay.ExitCode == 0, byDay.StandardError);
        Assert.Contains(DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), byDay.StandardOutput, StringComparison.Ordinal);
        Assert.True(budget.ExitCode == 0, budget.StandardError);
        Assert.StartsWith("examples: ok, spent $", budget.StandardOutput, StringComparison.Ordinal);
        foreach (var (run, field) in new[] { (badGroup, "--group-by"), (badTime, "--from"), (badLimit, "limitUsd"), (absurdLimit, "limitUsd") })
        {
            Assert.Equal(2, run.ExitCode);
            var line = Assert.Single(run.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("pfilm: ", line, StringComparison.Ordinal);
            Assert.Contains(field, line, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Budget_prints_the_crossings_of_the_projects_budget_and_of_a_jobs_own_newest_first()
    {
        var server = farm.Server.ToString();
        var spec = Path.Combine(farm.StorageRoot, "cli-alerts.yaml");
        await File.WriteAllTextAsync(spec, "project: cli-alerts\nshots:\n  - {name: s, prompt: a red ball, duration: 1, fps: 4, width: 64, height: 64, engine: procedural}\n");
        using (var http = new HttpClient { BaseAddress = farm.Server }.WithKey(farm.AdminKey))
        {
            await FarmChecks.PriceProjectCpuAsync(http, "cli-alerts");
        }

        var submitted = await PfilmAsync("submit", spec, "--server", server, "--wait");
        Assert.True(submitted.ExitCode == 0, submitted.StandardError);
        var jobId = Regex.Match(submitted.StandardOutput, @"Submitted job ([0-9a-f-]{36})").Groups[1].Value;
        var before = await PfilmAsync("budget", "--job", jobId, "--server", server);
        Assert.True(before.ExitCode == 0, before.StandardError);
        Assert.DoesNotContain("crossings", before.StandardOutput, StringComparison.Ordinal);
        var spent = decimal.Parse(Regex.Match(before.StandardOutput, @"spent \$([0-9.]+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(spent > 0, before.StandardOutput);
        var twice = (spent * 2).ToString("F6", System.Globalization.CultureInfo.InvariantCulture);

        // Limits set at or below the spend cross at once: the job's soft threshold, then the project's soft and hard.
        var job = await PfilmAsync("budget", "--job", jobId, "--limit", twice, "--soft", "0.25", "--server", server);
        var project = await PfilmAsync("budget", "cli-alerts", "--limit", spent.ToString("F6", System.Globalization.CultureInfo.InvariantCulture), "--soft", "0.5", "--server", server);

        Assert.True(job.ExitCode == 0, job.StandardError);
        Assert.True(project.ExitCode == 0, project.StandardError);
        var at = $"spent ${spent.ToString("F6", System.Globalization.CultureInfo.InvariantCulture)} of a $";
        var jobLines = job.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith($"job {jobId} (cli-alerts): soft, ", jobLines[0], StringComparison.Ordinal);
        Assert.Equal("crossings, newest first:", jobLines[1]);
        Assert.Matches(@"^  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  soft  ", jobLines[2]);
        Assert.Contains($"{at}{twice.TrimEnd('0')}", jobLines[2], StringComparison.Ordinal);
        Assert.Equal(3, jobLines.Length);
        var projectLines = project.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("cli-alerts: hard, ", projectLines[0], StringComparison.Ordinal);
        Assert.Equal("crossings, newest first:", projectLines[1]);
        Assert.Contains("  hard  " + at, projectLines[2], StringComparison.Ordinal);
        Assert.Contains("  soft  " + at, projectLines[3], StringComparison.Ordinal);
        Assert.Equal(4, projectLines.Length);

        // Shown again on a plain read, and the job's crossing stays on the job's budget only.
        var read = await PfilmAsync("budget", "cli-alerts", "--server", server);
        Assert.Equal(projectLines, read.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task Hangfires_dashboard_lists_the_farms_sweeps_to_local_requests()
    {
        using var http = new HttpClient { BaseAddress = farm.Server }.WithKey(farm.AdminKey);

        string[] sweeps = ["lease-sweep", "republish-unclaimed", "error-queue-watch", "frame-retention", "budget-alerts"];

        // The coordinator registers them in the background once it has started.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        var recurring = await http.GetStringAsync("/hangfire/recurring");
        while (!sweeps.All(job => recurring.Contains(job, StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
            recurring = await http.GetStringAsync("/hangfire/recurring");
        }

        Assert.All(sweeps, job => Assert.Contains(job, recurring, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Submit_preview_and_wait_renders_a_quarter_of_the_frames_at_half_size_and_prints_the_mp4_url_and_the_cost()
    {
        var (exitCode, stdout, stderr) = await PfilmAsync("submit", "examples/racing-at-dusk.yaml", "--server", farm.Server.ToString(), "--preview", "--wait");

        Assert.True(exitCode == 0, $"exit {exitCode}\n{stdout}\n{stderr}\n{farm.Output}");
        Assert.Matches(@"Submitted job [0-9a-f-]{36} \(preview\)", stdout);
        var url = Regex.Match(stdout, @"^MP4 racing-at-dusk: (http://\S+/api/shots/[0-9a-f-]{36}/video)$", RegexOptions.Multiline).Groups[1].Value;
        Assert.Matches(@"(?m)^Cost: \$\d+\.\d{6} for \d+\.\d device-seconds in \d+ attempt\(s\)$", stdout);

        // The full shot is 640×360, 72 frames at 24 fps, 20 steps: the preview holds each of 18 frames for 1/6 s.
        using var http = new HttpClient().WithKey(farm.AdminKey);
        var video = Path.Combine(farm.StorageRoot, $"preview-{Guid.NewGuid():N}.mp4");
        await File.WriteAllBytesAsync(video, await http.GetByteArrayAsync(url));
        var probe = await FfprobeResult.ProbeAsync(video);
        Assert.Equal((320, 176, 18, 6.0), (probe.Width, probe.Height, probe.Frames, probe.FramesPerSecond));
        await using var db = TestEnvironment.CreateDbContext(farm.ConnectionString);
        var shotId = Guid.Parse(url.Split('/')[^2]);
        var shot = await db.Shots.SingleAsync(s => s.Id == shotId);
        Assert.Equal(5, shot.Steps);
        Assert.Equal("preview", (await db.Jobs.SingleAsync(j => j.Id == shot.JobId)).Lane);
    }

    [Fact]
    public async Task Without_a_key_the_cli_exits_7_and_with_another_projects_key_4()
    {
        var otherProject = await TestKeys.CreateAsync(farm.ConnectionString, "not-examples", Domain.Access.ApiKeyRole.Submitter);

        var noKey = await PfilmAsync(new Dictionary<string, string> { ["PFILM_API_KEY"] = "" }, "submit", "examples/racing-at-dusk.yaml", "--server", farm.Server.ToString());
        var revokedLooking = await PfilmAsync("status", Guid.NewGuid().ToString(), "--server", farm.Server.ToString(), "--api-key", "pf_00000000_nope");
        var wrongProject = await PfilmAsync(new Dictionary<string, string> { ["PFILM_API_KEY"] = otherProject }, "submit", "examples/racing-at-dusk.yaml", "--server", farm.Server.ToString());
        var workers = await PfilmAsync(new Dictionary<string, string> { ["PFILM_API_KEY"] = otherProject }, "workers", "--server", farm.Server.ToString());

        Assert.Equal(7, noKey.ExitCode);
        Assert.StartsWith("pfilm: the farm needs an API key: set PFILM_API_KEY or pass --api-key", noKey.StandardError, StringComparison.Ordinal);
        Assert.Equal(7, revokedLooking.ExitCode);
        Assert.Contains("not known", revokedLooking.StandardError, StringComparison.Ordinal);
        Assert.Equal(4, wrongProject.ExitCode);
        Assert.Contains("there is no project examples for this key", wrongProject.StandardError, StringComparison.Ordinal);
        Assert.Equal(7, workers.ExitCode);
        Assert.All(new[] { noKey, revokedLooking, wrongProject, workers }, run => Assert.Single(run.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public async Task The_ci_preview_script_collects_the_mp4s_of_the_specs_it_previews_and_exits_with_the_first_failure()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-ci");
        var broken = Path.Combine(folder, "broken-node.yaml");
        await File.WriteAllTextAsync(broken, """
            project: examples
            shots:
              - {name: broken-node, prompt: a red ball, duration: 1, fps: 8, width: 64, height: 64, engine: diffusion, steps: 2}
            """);
        var environment = new Dictionary<string, string>
        {
            ["PFILM_SERVER"] = farm.Server.ToString(),
            ["PFILM_API_KEY"] = await TestKeys.CreateAsync(farm.ConnectionString, "examples", Domain.Access.ApiKeyRole.Submitter),
            ["PFILM_PREVIEW_DIR"] = Path.Combine(folder, "previews"),
        };

        var (exitCode, stdout, stderr) = await TestEnvironment.RunAsync("bash", ["examples/ci/render-previews.sh", "examples/racing-at-dusk.yaml", broken], timeout: TimeSpan.FromMinutes(8), environment: environment);
        var nothingChanged = await TestEnvironment.RunAsync("bash", ["examples/ci/render-previews.sh"], environment: new Dictionary<string, string>(environment) { ["PFILM_BASE_REF"] = "HEAD" });

        Assert.True(exitCode == 1, $"exit {exitCode}\n{stdout}\n{stderr}\n{farm.Output}");
        Assert.Contains($"::error file={broken}::preview failed (pfilm exit code 1)", stdout, StringComparison.Ordinal);
        var probe = await FfprobeResult.ProbeAsync(Path.Combine(folder, "previews", "racing-at-dusk-racing-at-dusk.mp4"));
        Assert.Equal((320, 176, 18), (probe.Width, probe.Height, probe.Frames));
        Assert.True(File.Exists(Path.Combine(folder, "previews", "broken-node.log")));
        Assert.False(File.Exists(Path.Combine(folder, "previews", "broken-node-broken-node.mp4")));
        Assert.True(nothingChanged.ExitCode == 0, nothingChanged.StandardOutput + nothingChanged.StandardError);
        Assert.Contains("No shot specs changed", nothingChanged.StandardOutput, StringComparison.Ordinal);
        Directory.Delete(folder, recursive: true);
    }

    private Task<(int ExitCode, string StandardOutput, string StandardError)> PfilmAsync(Dictionary<string, string> environment, params string[] arguments) =>
        TestEnvironment.RunAsync("bash", ["./pfilm", .. arguments], timeout: TimeSpan.FromMinutes(8), environment: environment);

    /// <summary>Runs <c>pfilm</c> with the farm's admin key in <c>PFILM_API_KEY</c>, as a CI job would have it.</summary>
    private Task<(int ExitCode, string StandardOutput, string StandardError)> PfilmAsync(params string[] arguments) =>
        TestEnvironment.RunAsync("bash", ["./pfilm", .. arguments], timeout: TimeSpan.FromMinutes(8), environment: new Dictionary<string, string> { ["PFILM_API_KEY"] = farm.AdminKey });
}
