using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>Cancel, pause, resume, retry, job dependencies and frame retention, with the test playing the worker.</summary>
public class JobControlTests(FakeClockFarmFixture farm) : IClassFixture<FakeClockFarmFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task Cancel_stops_the_running_attempt_bills_its_time_and_retry_reruns_only_unfinished_tasks()
    {
        var jobId = await _worker.SubmitAsync("it-cancel");
        var keyframes = await _worker.WaitForAttemptsAsync(jobId, 3);
        await _worker.ClaimGrantedAsync(keyframes["kf-00000"].Id, "renderer");
        await _worker.Bus.Publish(WorkerDouble.Succeeded(keyframes["kf-00000"].Id, 2, "renderer"));
        await _worker.ClaimGrantedAsync(keyframes["kf-00012"].Id, "renderer");
        await _worker.WaitForAsync(db => db.Tasks.SingleAsync(t => t.Id == keyframes["kf-00000"].TaskId), t => t.State == RenderTaskState.Succeeded);

        var cancelled = await PostAsync<JobStatus>($"/api/jobs/{jobId}/cancel");
        var ack = await _worker.HeartbeatAsync("renderer", keyframes["kf-00012"].Id);
        await _worker.Bus.Publish(WorkerDouble.Failed(keyframes["kf-00012"].Id, 3.25, "cancelled", "stopped by the coordinator", "renderer"));
        await _worker.WaitUntilEventsHandledAsync();

        Assert.Equal("Cancelled", cancelled.State);
        Assert.Contains(ack.Stop, s => s.AttemptId == keyframes["kf-00012"].Id);
        await using (var db = farm.CreateDbContext())
        {
            Assert.Equal(AttemptState.Cancelled, (await db.Attempts.SingleAsync(a => a.Id == keyframes["kf-00012"].Id)).State);
            Assert.Equal(AttemptState.Cancelled, (await db.Attempts.SingleAsync(a => a.Id == keyframes["kf-00023"].Id)).State);
            var bill = await db.Usage.SingleAsync(u => u.AttemptId == keyframes["kf-00012"].Id);
            Assert.Equal(("cancelled", 3.25), (bill.Outcome, bill.DeviceSeconds));
            Assert.DoesNotContain(await db.Tasks.Where(t => t.JobId == jobId).Select(t => t.State).ToListAsync(), s => s is RenderTaskState.Ready or RenderTaskState.Dispatched or RenderTaskState.Running);
        }

        using (var again = await farm.Http.PostAsync($"/api/jobs/{jobId}/cancel", null))
        {
            Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        }

        var retried = await PostAsync<JobStatus>($"/api/jobs/{jobId}/retry");
        Assert.Equal("Queued", retried.State);
        var attempts = await _worker.WaitForAsync(
            db => db.Attempts.Join(db.Tasks.Where(t => t.JobId == jobId), a => a.TaskId, t => t.Id, (a, t) => new { t.Key, a.State }).ToListAsync(),
            list => list.Count(a => a.State == AttemptState.Queued) == 2);
        Assert.Equal(["kf-00012", "kf-00023"], attempts.Where(a => a.State == AttemptState.Queued).Select(a => a.Key).Order(StringComparer.Ordinal));
        Assert.Single(attempts, a => a.Key == "kf-00000");
    }

    [Fact]
    public async Task An_attempt_that_finishes_as_its_job_is_cancelled_keeps_its_frames_and_retry_does_not_pay_for_them_again()
    {
        var jobId = await _worker.SubmitAsync("it-cancel-race");
        var keyframes = await _worker.WaitForAttemptsAsync(jobId, 3);
        await _worker.ClaimGrantedAsync(keyframes["kf-00012"].Id, "renderer");

        await PostAsync<JobStatus>($"/api/jobs/{jobId}/cancel");
        await _worker.Bus.Publish(WorkerDouble.Succeeded(keyframes["kf-00012"].Id, 2.5, "renderer"));
        await _worker.WaitUntilEventsHandledAsync();
        await PostAsync<JobStatus>($"/api/jobs/{jobId}/retry");

        var attempts = await _worker.WaitForAsync(
            db => db.Attempts.Join(db.Tasks.Where(t => t.JobId == jobId), a => a.TaskId, t => t.Id, (a, t) => new { t.Key, a.State }).ToListAsync(),
            list => list.Count(a => a.State == AttemptState.Queued) == 2);
        Assert.Equal(["kf-00000", "kf-00023"], attempts.Where(a => a.State == AttemptState.Queued).Select(a => a.Key).Order(StringComparer.Ordinal));
        await using var db = farm.CreateDbContext();
        Assert.Equal(RenderTaskState.Succeeded, (await db.Tasks.SingleAsync(t => t.Id == keyframes["kf-00012"].TaskId)).State);
        Assert.Equal(1, await db.Usage.CountAsync(u => u.TaskId == keyframes["kf-00012"].TaskId && u.Outcome == "succeeded"));
    }

    [Fact]
    public async Task A_retry_that_meets_the_stopped_attempts_report_mid_commit_still_runs_its_task_again()
    {
        var jobId = await _worker.SubmitAsync("it-cancel-report-race");
        var keyframes = await _worker.WaitForAttemptsAsync(jobId, 3);
        var stopped = keyframes["kf-00012"];
        await _worker.ClaimGrantedAsync(stopped.Id, "renderer");
        await PostAsync<JobStatus>($"/api/jobs/{jobId}/cancel");

        // The worker's cancelled report is held at its commit, after it has judged the task (still Cancelled, so not
        // handed back), while the retry runs: the retry, still seeing the attempt Claimed, used to leave the task
        // Running for an attempt that had ended, and the job never finished (FaultTests, under load).
        await using var gate = new NpgsqlConnection(farm.ConnectionString);
        await gate.OpenAsync();
        await ExecuteAsync(gate, "SELECT pg_advisory_lock(7, 14)");
        await ExecuteAsync(gate, $"""
            CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_advisory_lock(7, 14); PERFORM pg_advisory_unlock(7, 14); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER hold_commit AFTER UPDATE ON attempts DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
            WHEN (NEW.id = '{stopped.Id}' AND NEW.state = 'Cancelled') EXECUTE FUNCTION hold_commit();
            """);
        try
        {
            await _worker.Bus.Publish(WorkerDouble.Failed(stopped.Id, 1.5, "cancelled", "stopped by the coordinator", "renderer"));
            await _worker.WaitForAsync(_ => CountAsync(gate, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'"), held => held == 1);
            var retry = farm.Http.PostAsync($"/api/jobs/{jobId}/retry", null);
            await Task.WhenAny(retry, Task.Delay(TimeSpan.FromSeconds(2)));
            await ExecuteAsync(gate, "SELECT pg_advisory_unlock(7, 14)");
            using var retried = await retry;
            Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
        }
        finally
        {
            await ExecuteAsync(gate, "DROP TRIGGER hold_commit ON attempts; DROP FUNCTION hold_commit()");
        }

        await _worker.WaitUntilEventsHandledAsync();
        var attempts = await _worker.WaitForAsync(
            async db => string.Join(", ", await db.Attempts.Where(a => a.TaskId == stopped.TaskId).Join(db.Tasks, a => a.TaskId, t => t.Id, (a, t) => new { a.Number, Attempt = a.State, Task = t.State })
                .OrderBy(a => a.Number).Select(a => $"attempt {a.Number} {a.Attempt} of a {a.Task} task").ToListAsync()),
            attempts => attempts.Contains("attempt 2", StringComparison.Ordinal));
        Assert.Equal("attempt 1 Cancelled of a Dispatched task, attempt 2 Queued of a Dispatched task", attempts);
    }

    [Fact]
    public async Task A_paused_job_gets_no_new_attempts_until_it_is_resumed()
    {
        var jobId = await _worker.SubmitAsync("it-pause");
        var keyframes = await _worker.WaitForAttemptsAsync(jobId, 3);
        await PostAsync<JobStatus>($"/api/jobs/{jobId}/pause");
        foreach (var key in new[] { "kf-00000", "kf-00012" })
        {
            Assert.Equal("job is paused", await _worker.ClaimAsync(keyframes[key].Id, "renderer"));
        }

        var status = await _worker.WaitForAsync(
            db => db.Tasks.Where(t => t.JobId == jobId && (t.Key == "kf-00000" || t.Key == "kf-00012")).Select(t => t.State).ToListAsync(),
            states => states.All(s => s == RenderTaskState.Ready));
        Assert.Equal(2, status.Count);
        await using (var db = farm.CreateDbContext())
        {
            Assert.Equal(0, await db.Attempts.CountAsync(a => a.State == AttemptState.Queued && db.Tasks.Any(t => t.Id == a.TaskId && t.JobId == jobId && t.Key != "kf-00023")));
        }

        var resumed = await PostAsync<JobStatus>($"/api/jobs/{jobId}/resume");
        Assert.False(resumed.Paused);
        await _worker.WaitForAsync(
            db => db.Tasks.Where(t => t.JobId == jobId && (t.Key == "kf-00000" || t.Key == "kf-00012")).Select(t => t.State).ToListAsync(),
            states => states.All(s => s == RenderTaskState.Dispatched));
    }

    [Fact]
    public async Task A_job_waits_for_the_jobs_it_names_and_fails_with_the_reason_when_one_is_cancelled()
    {
        var first = await _worker.SubmitAsync("it-after");
        var second = await _worker.SubmitAsync("it-after", $"after: [{first}]\n" + WorkerDouble.OneSecondShot);
        var third = await _worker.SubmitAsync("it-after", $"after: [{second}]\n" + WorkerDouble.OneSecondShot);
        await _worker.WaitForAttemptsAsync(first, 3);

        await using (var db = farm.CreateDbContext())
        {
            Assert.Equal([JobState.Waiting, JobState.Waiting], await db.Jobs.Where(j => j.Id == second || j.Id == third).Select(j => j.State).ToListAsync());
            Assert.Equal(0, await db.Attempts.CountAsync(a => db.Tasks.Any(t => t.Id == a.TaskId && (t.JobId == second || t.JobId == third))));
        }

        await PostAsync<JobStatus>($"/api/jobs/{first}/cancel");

        var failed = await _worker.WaitForAsync(db => db.Jobs.Where(j => j.Id == second || j.Id == third).ToListAsync(), jobs => jobs.All(j => j.State == JobState.Failed));
        Assert.Equal($"job {first}, which it waits for, is Cancelled", failed.Single(j => j.Id == second).Error);
        Assert.Equal($"job {second}, which it waits for, is Failed", failed.Single(j => j.Id == third).Error);
    }

    [Fact]
    public async Task A_waiting_job_is_dispatched_when_the_job_it_names_succeeds()
    {
        var first = await _worker.SubmitAsync("it-after-ok", "shots:\n  - {name: one, prompt: a blue ball, duration: 0.05, fps: 20, width: 64, height: 64}\n");
        var second = await _worker.SubmitAsync("it-after-ok", $"after: [{first}]\n" + WorkerDouble.OneSecondShot);
        foreach (var key in new[] { "kf-00000", "assemble" })
        {
            var attempt = (await _worker.WaitForAttemptsAsync(first, key == "assemble" ? 2 : 1))[key];
            await _worker.ClaimGrantedAsync(attempt.Id, "renderer");
            await _worker.Bus.Publish(WorkerDouble.Succeeded(attempt.Id, 1, "renderer", [$"{first:N}/one/shot.mp4"]));
        }

        await _worker.WaitForAsync(db => db.Jobs.SingleAsync(j => j.Id == first), j => j.State == JobState.Succeeded);
        await _worker.WaitForAttemptsAsync(second, 3);
        var status = await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{second}", SpecJson.Options);
        Assert.Equal("Queued", status!.State);
        Assert.Equal([first], status.After!);
    }

    [Fact]
    public async Task A_job_naming_an_unknown_job_is_refused_and_nothing_is_written()
    {
        var unknown = Guid.NewGuid();
        using var content = new StringContent($"project: it-after-bad\nafter: [{unknown}]\n{WorkerDouble.OneSecondShot}", System.Text.Encoding.UTF8, "application/yaml");
        using var response = await farm.Http.PostAsync("/api/projects/it-after-bad/jobs", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Contains($"there is no job {unknown}", problem.RootElement.GetProperty("errors").GetProperty("after[0]")[0].GetString(), StringComparison.Ordinal);
        await using var db = farm.CreateDbContext();
        Assert.False(await db.Jobs.AnyAsync(j => j.Project == "it-after-bad"));
    }

    [Fact]
    public async Task Retention_deletes_the_frames_of_old_finished_shots_and_keeps_the_mp4_and_manifest()
    {
        var jobId = await _worker.SubmitAsync("it-retention", "shots:\n  - {name: old, prompt: a blue ball, duration: 0.05, fps: 20, width: 64, height: 64}\n");
        var storage = farm.Api.Services.GetRequiredService<ShotStorage>();
        var folder = ShotStorage.ShotFolder(jobId, "old");
        await storage.WriteAtomicAsync(ShotStorage.FramePath(folder, 0), [1, 2, 3], CancellationToken.None);
        await storage.WriteAtomicAsync(ShotStorage.VideoPath(folder), [4, 5, 6], CancellationToken.None);
        foreach (var key in new[] { "kf-00000", "assemble" })
        {
            var attempt = (await _worker.WaitForAttemptsAsync(jobId, key == "assemble" ? 2 : 1))[key];
            await _worker.ClaimGrantedAsync(attempt.Id, "renderer");
            await _worker.Bus.Publish(WorkerDouble.Succeeded(attempt.Id, 1, "renderer", [ShotStorage.VideoPath(folder)]));
        }

        await _worker.WaitForAsync(db => db.Jobs.SingleAsync(j => j.Id == jobId), j => j.State == JobState.Succeeded);
        var maintenance = farm.Api.Services.GetRequiredService<FarmMaintenance>();
        await maintenance.ApplyRetentionAsync(CancellationToken.None);
        Assert.True(storage.Exists(ShotStorage.FramePath(folder, 0)), "frames of a shot finished just now were deleted");

        farm.Clock.Advance(TimeSpan.FromDays(8));
        await maintenance.ApplyRetentionAsync(CancellationToken.None);

        Assert.False(Directory.Exists(storage.FullPath($"{folder}/frames")));
        Assert.True(storage.Exists(ShotStorage.VideoPath(folder)));
        Assert.True(storage.Exists(ShotStorage.ManifestPath(folder)));
        await using var db = farm.CreateDbContext();
        Assert.NotNull((await db.Shots.SingleAsync(s => s.JobId == jobId)).FramesDeletedAt);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> CountAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<T> PostAsync<T>(string path)
    {
        using var response = await farm.Http.PostAsync(path, null);
        Assert.True(response.IsSuccessStatusCode, $"POST {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<T>(SpecJson.Options))!;
    }
}
