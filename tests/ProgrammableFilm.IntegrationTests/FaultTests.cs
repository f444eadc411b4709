using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data.Entities;
using Xunit.Abstractions;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// Faults on a running farm (a worker killed, RabbitMQ and PostgreSQL going away, a cancel mid-render): each job
/// still ends in a true state with every frame in its MP4, nothing billed twice and nothing in an error queue.
/// Diffusion at 64×64 so that a segment task runs for seconds and a fault lands in the middle of it.
/// </summary>
public class FaultTests(FaultFarmFixture farm, ITestOutputHelper output) : IClassFixture<FaultFarmFixture>
{
    internal const string Project = "it-fault";

    // 48 frames: keyframes 0, 24 and 47, two segments of 23 and 22 frames (3 to 5 s each here), then assembly.
    internal static string Spec(string name, int seed) => $"""
        project: {Project}
        lane: preview
        shots:
          - name: {name}
            prompt: a yellow boat sailing left to right on the ocean
            duration: 4
            fps: 12
            width: 64
            height: 64
            steps: 10
            guidance: 3
            seed: {seed}
            engine: diffusion
            keyframeInterval: 24
        """;

    [Fact]
    public async Task Killed_worker_attempt_is_lost_billed_once_as_lost_and_its_task_runs_again_on_another_worker()
    {
        await farm.EnsureWorkersAsync();
        // Four times the steps: a 10-step segment on a warm worker can finish between the heartbeat that shows it
        // running and the kill, and then there is no attempt left to lose.
        var jobId = await FarmChecks.SubmitAsync(farm.Http, Project, Spec("killed-worker", 21).Replace("steps: 10", "steps: 40", StringComparison.Ordinal));

        // Mid-task: claimed, and a heartbeat has reported enough device time that its bill is worth a millionth of a
        // dollar (the ledger's precision): a heartbeat sent just after the claim reports a few milliseconds.
        var victim = await FarmChecks.PollAsync(farm.CreateDbContext, db => ClaimedSegmentAsync(db, jobId), a => a is { DeviceSeconds: >= 0.5 }, TimeSpan.FromSeconds(90), "a segment attempt running on a worker", () => farm.WorkerOutput);
        var killedWorker = victim!.WorkerId!;
        farm.KillWorker(killedWorker);
        var killedAt = DateTime.UtcNow;

        var ended = await FarmChecks.PollAsync(farm.CreateDbContext, db => db.Attempts.AsNoTracking().SingleAsync(a => a.Id == victim.Id), a => a.State != AttemptState.Claimed, FaultFarmFixture.LeaseDuration + TimeSpan.FromSeconds(15), "the killed worker's attempt ends");
        Assert.True(ended.State == AttemptState.Lost, $"the killed worker's attempt ended {ended.State} (did the kill land after the task finished?)");
        Assert.True(ended.FinishedAt >= ended.LastHeartbeatAt + FaultFarmFixture.LeaseDuration, $"declared lost at {ended.FinishedAt:O}, before its lease from {ended.LastHeartbeatAt:O} ran out");

        var rerun = await FarmChecks.PollAsync(
            farm.CreateDbContext,
            db => db.Attempts.AsNoTracking().Where(a => a.TaskId == victim.TaskId && a.Number > victim.Number && a.ClaimedAt != null).OrderBy(a => a.Number).FirstOrDefaultAsync(),
            a => a is not null,
            TimeSpan.FromSeconds(60),
            "the lost task runs again",
            () => farm.WorkerOutput);
        Assert.NotEqual(killedWorker, rerun!.WorkerId);
        var rerunAfter = rerun.ClaimedAt!.Value - killedAt;
        var bound = FaultFarmFixture.LeaseDuration + FaultFarmFixture.SweepInterval + TimeSpan.FromSeconds(5);
        Assert.True(rerunAfter < bound, $"the task ran again {rerunAfter.TotalSeconds:F1} s after the kill; expected under {bound.TotalSeconds} s (lease + sweep + 5 s)\n{farm.WorkerOutput}");
        output.WriteLine($"killed {killedWorker} at {killedAt:HH:mm:ss.fff}; attempt lost at {ended.FinishedAt:HH:mm:ss.fff} (last heartbeat {ended.LastHeartbeatAt:HH:mm:ss.fff}); task claimed again by {rerun.WorkerId} {rerunAfter.TotalSeconds:F1} s after the kill");

        var workers = await PollWorkersAsync(list => list.Any(w => w.Id == killedWorker && w.State == "lost"), FaultFarmFixture.LeaseDuration + TimeSpan.FromSeconds(10));
        Assert.All(workers.Where(w => farm.LiveWorkers.Contains(w.Id)), w => Assert.NotEqual("lost", w.State));

        // Each worker says, in its heartbeat, how it runs the model and on what device (for the fleet view and placement).
        Assert.All(workers, w => Assert.True(w.DiffusionEngine == "native" && !string.IsNullOrEmpty(w.DeviceName) && w.DeviceMemoryBytes > 0, $"{w.Id}: {w.DiffusionEngine} {w.DeviceName} {w.DeviceMemoryBytes}"));

        var status = await FarmChecks.WaitForJobAsync(farm.Http, jobId, "Succeeded", TimeSpan.FromMinutes(2), () => farm.WorkerOutput);
        await FarmChecks.AssertEveryFrameIsInTheVideoAsync(status, farm.StorageRoot);
        await using var db = farm.CreateDbContext();
        var (_, _, ledger) = await FarmChecks.AssertBilledOnceAsync(db, jobId);
        var bill = Assert.Single(ledger, u => u.AttemptId == victim.Id);
        Assert.Equal(("lost", killedWorker), (bill.Outcome, bill.WorkerId));
        Assert.Equal(ended.DeviceSeconds, bill.DeviceSeconds);
        Assert.True(bill.DeviceSeconds > 0 && bill.Cost > 0, $"the lost attempt is billed {bill.DeviceSeconds} device-seconds, {bill.Cost}");
        await FarmChecks.AssertNoErrorQueueMessagesAsync(farm.Http);
    }

    [Fact]
    public async Task Cancel_mid_render_stops_and_bills_the_running_attempt_and_retry_reruns_only_unfinished_tasks()
    {
        await farm.EnsureWorkersAsync();
        // Four times the steps: on a quiet machine a 10-step segment can finish before the next heartbeat carries
        // the cancel to its worker, and then there is no running attempt left to stop.
        var jobId = await FarmChecks.SubmitAsync(farm.Http, Project, Spec("cancel-retry", 24).Replace("steps: 10", "steps: 40", StringComparison.Ordinal));
        var running = await FarmChecks.PollAsync(farm.CreateDbContext, db => ClaimedSegmentAsync(db, jobId), a => a is { DeviceSeconds: > 0 }, TimeSpan.FromSeconds(90), "a segment attempt running on a worker", () => farm.WorkerOutput);

        using (var cancel = await farm.Http.PostAsync($"/api/jobs/{jobId}/cancel", null))
        {
            Assert.True(cancel.StatusCode == HttpStatusCode.OK, await cancel.Content.ReadAsStringAsync());
            Assert.Equal("Cancelled", (await cancel.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options))!.State);
        }

        Dictionary<Guid, int> succeededBeforeCancel;
        await using (var db = farm.CreateDbContext())
        {
            succeededBeforeCancel = await db.Tasks.Where(t => t.JobId == jobId && t.State == RenderTaskState.Succeeded).ToDictionaryAsync(t => t.Id, t => t.AttemptCount);
        }

        // The segment needs both its keyframes, so they had succeeded.
        Assert.True(succeededBeforeCancel.Count >= 2, $"{succeededBeforeCancel.Count} task(s) had succeeded before the cancel");

        var stopped = await FarmChecks.PollAsync(farm.CreateDbContext, db => db.Attempts.AsNoTracking().SingleAsync(a => a.Id == running!.Id), a => a.State != AttemptState.Claimed, TimeSpan.FromSeconds(30), "the running attempt ends", () => farm.WorkerOutput);
        Assert.True(stopped.State == AttemptState.Cancelled, $"the running attempt ended {stopped.State} ({stopped.Error}), not Cancelled");
        await using (var db = farm.CreateDbContext())
        {
            var bill = await db.Usage.AsNoTracking().SingleAsync(u => u.AttemptId == running!.Id);
            Assert.Equal("cancelled", bill.Outcome);
            Assert.True(bill.DeviceSeconds > 0, "the cancelled attempt ran, so it is billed for the time it ran");
        }

        var logs = (await farm.Http.GetFromJsonAsync<LogPage>($"/api/jobs/{jobId}/logs", SpecJson.Options))!.Attempts;
        var log = Assert.Single(logs, l => l.AttemptId == running!.Id);
        Assert.Equal("Cancelled", log.State);
        Assert.Contains(log.Lines, line => line.Message.Contains("task is Cancelled", StringComparison.Ordinal));
        Assert.Equal("Cancelled", (await FarmChecks.GetJobAsync(farm.Http, jobId)).State);

        using (var retry = await farm.Http.PostAsync($"/api/jobs/{jobId}/retry", null))
        {
            Assert.True(retry.StatusCode == HttpStatusCode.OK, await retry.Content.ReadAsStringAsync());
        }

        var status = await FarmChecks.WaitForJobAsync(farm.Http, jobId, "Succeeded", TimeSpan.FromMinutes(2), () => farm.WorkerOutput);
        await FarmChecks.AssertEveryFrameIsInTheVideoAsync(status, farm.StorageRoot);
        await using (var db = farm.CreateDbContext())
        {
            var (tasks, _, _) = await FarmChecks.AssertBilledOnceAsync(db, jobId);
            Assert.All(succeededBeforeCancel, before => Assert.Equal(before.Value, tasks.Single(t => t.Id == before.Key).AttemptCount));
            Assert.True(tasks.Single(t => t.Id == running!.TaskId).AttemptCount > running!.Number, "the cancelled segment ran again after the retry");
        }

        await FarmChecks.AssertNoErrorQueueMessagesAsync(farm.Http);
    }

    [Fact]
    public async Task Retry_at_once_after_a_cancel_never_has_two_live_attempts_of_one_task()
    {
        await farm.EnsureWorkersAsync();
        var jobId = await FarmChecks.SubmitAsync(farm.Http, Project, Spec("cancel-retry-at-once", 25).Replace("steps: 10", "steps: 40", StringComparison.Ordinal));
        await FarmChecks.PollAsync(farm.CreateDbContext, db => ClaimedSegmentAsync(db, jobId), a => a is { DeviceSeconds: > 0 }, TimeSpan.FromSeconds(90), "a segment attempt running on a worker", () => farm.WorkerOutput);

        // Back to back, well inside a heartbeat interval: the workers have not yet heard of the cancel.
        using (var cancel = await farm.Http.PostAsync($"/api/jobs/{jobId}/cancel", null))
        using (var retry = await farm.Http.PostAsync($"/api/jobs/{jobId}/retry", null))
        {
            Assert.True(cancel.StatusCode == HttpStatusCode.OK, await cancel.Content.ReadAsStringAsync());
            Assert.True(retry.StatusCode == HttpStatusCode.OK, await retry.Content.ReadAsStringAsync());
        }

        var mostLiveAttemptsOfOneTask = 0;
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            await using (var db = farm.CreateDbContext())
            {
                var live = await db.Attempts.AsNoTracking().Where(a => a.State == AttemptState.Claimed)
                    .Join(db.Tasks.Where(t => t.JobId == jobId), a => a.TaskId, t => t.Id, (a, t) => t.Id)
                    .GroupBy(taskId => taskId).Select(g => g.Count()).ToListAsync();
                mostLiveAttemptsOfOneTask = Math.Max(mostLiveAttemptsOfOneTask, live.DefaultIfEmpty(0).Max());
                if (await db.Jobs.AnyAsync(j => j.Id == jobId && j.State != JobState.Queued && j.State != JobState.Running))
                {
                    break;
                }
            }

            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} did not finish in 2 minutes\n{farm.WorkerOutput}");
            await Task.Delay(50);
        }

        Assert.Equal(1, mostLiveAttemptsOfOneTask);
        var status = await FarmChecks.WaitForJobAsync(farm.Http, jobId, "Succeeded", TimeSpan.FromSeconds(5), () => farm.WorkerOutput);
        await FarmChecks.AssertEveryFrameIsInTheVideoAsync(status, farm.StorageRoot);
        await using (var db = farm.CreateDbContext())
        {
            await FarmChecks.AssertBilledOnceAsync(db, jobId);
        }

        await FarmChecks.AssertNoErrorQueueMessagesAsync(farm.Http);
    }

    private static Task<Attempt?> ClaimedSegmentAsync(Data.FarmDbContext db, Guid jobId) =>
        db.Attempts.AsNoTracking().Where(a => a.State == AttemptState.Claimed)
            .Join(db.Tasks.Where(t => t.JobId == jobId && t.Kind == "segment"), a => a.TaskId, t => t.Id, (a, t) => a)
            .OrderBy(a => a.ClaimedAt)
            .FirstOrDefaultAsync();

    private async Task<List<WorkerStatus>> PollWorkersAsync(Func<List<WorkerStatus>, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var workers = (await farm.Http.GetFromJsonAsync<List<WorkerStatus>>("/api/workers", SpecJson.Options))!;
            if (done(workers))
            {
                return workers;
            }

            Assert.True(DateTime.UtcNow < deadline, $"GET /api/workers: not as expected within {timeout}: {string.Join(", ", workers.Select(w => $"{w.Id} {w.State} {w.LastSeenAt:HH:mm:ss}"))}");
            await Task.Delay(200);
        }
    }
}

/// <summary>
/// RabbitMQ stopping under a running job (every connection of the coordinator and the workers drops). A class of its
/// own, with its own farm: after the outage a worker can wait out a whole claim timeout (30 s) for a grant that never
/// reaches it, its one slot held, and that must not leak into the timing of the other fault tests.
/// </summary>
public class BrokerOutageFaultTests(FaultFarmFixture farm) : IClassFixture<FaultFarmFixture>
{
    [Fact]
    public async Task Job_completes_when_rabbitmq_drops_every_connection_for_five_seconds_mid_job()
    {
        await farm.EnsureWorkersAsync();
        var jobId = await FarmChecks.SubmitAsync(farm.Http, FaultTests.Project, FaultTests.Spec("broker-outage", 22));
        await FarmChecks.WaitForClaimedAttemptAsync(farm.CreateDbContext, jobId, "segment", () => farm.WorkerOutput);

        await FaultFarmFixture.RunServiceHelperAsync("rabbitmqctl", "stop_app");
        try
        {
            // The outage itself: the broker is down for this long whatever the farm does.
            await Task.Delay(TimeSpan.FromSeconds(5));
        }
        finally
        {
            await FaultFarmFixture.RunServiceHelperAsync("rabbitmqctl", "start_app");
        }

        var status = await FarmChecks.WaitForJobAsync(farm.Http, jobId, "Succeeded", TimeSpan.FromMinutes(2), () => farm.WorkerOutput);
        await FarmChecks.AssertEveryFrameIsInTheVideoAsync(status, farm.StorageRoot);
        await using var db = farm.CreateDbContext();
        await FarmChecks.AssertBilledOnceAsync(db, jobId);
        await FarmChecks.AssertNoErrorQueueMessagesAsync(farm.Http);
    }
}

/// <summary>
/// PostgreSQL stopping under a running job. A class of its own, with its own farm: after a database restart
/// Hangfire's server keeps its schedulers faulted for about 15 s, and the sweeps that pause with them must not leak
/// into the timing of the other fault tests (a lost worker's lease runs out on the sweep's clock).
/// </summary>
public class DatabaseOutageFaultTests(FaultFarmFixture farm) : IClassFixture<FaultFarmFixture>
{
    [Fact]
    public async Task Job_completes_when_postgresql_is_down_for_eight_seconds_mid_job_and_no_attempt_is_lost_because_of_it()
    {
        await farm.EnsureWorkersAsync();
        var jobId = await FarmChecks.SubmitAsync(farm.Http, FaultTests.Project, FaultTests.Spec("database-outage", 23));
        await FarmChecks.WaitForClaimedAttemptAsync(farm.CreateDbContext, jobId, "segment", () => farm.WorkerOutput);

        await FaultFarmFixture.RunServiceHelperAsync("pg-stop");
        try
        {
            // The outage itself, longer than a lease: workers heartbeat into the void meanwhile. A client is told to
            // come back, and a job submitted now leaves nothing behind.
            var outageEnds = DateTime.UtcNow.AddSeconds(8);
            using var statusDuringOutage = await farm.Http.GetAsync($"/api/jobs/{jobId}");
            await AssertDatabaseUnavailableAsync(statusDuringOutage);
            using var yaml = new StringContent(FaultTests.Spec("during-outage", 24), System.Text.Encoding.UTF8, "application/yaml");
            using var submitted = await farm.Http.PostAsync($"/api/projects/{FaultTests.Project}/jobs", yaml);
            await AssertDatabaseUnavailableAsync(submitted);
            await Task.Delay(outageEnds - DateTime.UtcNow);
        }
        finally
        {
            await FaultFarmFixture.RunServiceHelperAsync("pg-start");

            // The test's own admin connections (other fixtures create their databases with them) died with the
            // server; the coordinator's pool is left alone, recovering from that is what is under test.
            NpgsqlConnection.ClearPool(new NpgsqlConnection(TestEnvironment.PostgresAdmin));
        }

        var status = await FarmChecks.WaitForJobAsync(farm.Http, jobId, "Succeeded", TimeSpan.FromMinutes(3), () => farm.WorkerOutput);
        await FarmChecks.AssertEveryFrameIsInTheVideoAsync(status, farm.StorageRoot);
        await using var db = farm.CreateDbContext();
        var (_, attempts, _) = await FarmChecks.AssertBilledOnceAsync(db, jobId);
        Assert.DoesNotContain(attempts, a => a.State == AttemptState.Lost);
        Assert.False(await db.Shots.AnyAsync(s => s.Name == "during-outage"));
        await FarmChecks.AssertNoErrorQueueMessagesAsync(farm.Http);
    }

    private static async Task AssertDatabaseUnavailableAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(5), response.Headers.RetryAfter?.Delta);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<Microsoft.AspNetCore.Mvc.ProblemDetails>();
        Assert.Equal("The farm's database is unavailable", problem!.Title);
    }
}
