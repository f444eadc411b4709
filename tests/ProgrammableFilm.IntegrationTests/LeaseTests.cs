using System.Net;
using System.Net.Http.Json;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The coordinator on the real PostgreSQL and RabbitMQ with its clock in the test's hand: leases, retries and
/// blocklists are decided by a <see cref="FakeTimeProvider"/>, so a 30-s lease is tested without waiting 30 s.
/// </summary>
public sealed class FakeClockFarmFixture : FarmFixture
{
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    protected override int WorkerCount => 0;

    protected override IReadOnlyDictionary<string, string> ExtraSettings => new Dictionary<string, string>
    {
        ["Coordinator:LeaseDuration"] = "00:00:30",

        // Tests leave attempts unclaimed on purpose; a shallow queue would stop dispatch for the next test.
        ["Coordinator:MaxQueuedPerPool"] = "1000",
        ["Coordinator:RetryBackoff"] = "00:00:04",
        ["Coordinator:BlocklistThreshold"] = "2",
    };

    protected override void ConfigureServices(IServiceCollection services) => services.AddSingleton<TimeProvider>(Clock);

    /// <summary>Moves the clock in sweep-sized steps, sweeping after each, as the Hangfire schedule would.</summary>
    public async Task<int> AdvanceAndSweepAsync(TimeSpan by)
    {
        var sweeper = Api.Services.GetRequiredService<LeaseSweeper>();
        var lost = await sweeper.SweepAsync(CancellationToken.None);
        for (var elapsed = TimeSpan.Zero; elapsed < by; elapsed += TimeSpan.FromSeconds(2))
        {
            Clock.Advance(TimeSpan.FromSeconds(2));
            lost += await sweeper.SweepAsync(CancellationToken.None);
        }

        return lost;
    }
}

public class LeaseTests(FakeClockFarmFixture farm) : IClassFixture<FakeClockFarmFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task Lost_worker_attempt_is_requeued_and_billed_once_as_lost()
    {
        var jobId = await _worker.SubmitAsync("it-lease");
        var first = (await _worker.WaitForAttemptsAsync(jobId, 3))["kf-00000"];
        await _worker.ClaimGrantedAsync(first.Id, "doomed");
        await farm.AdvanceAndSweepAsync(TimeSpan.FromSeconds(4));
        var ack = await _worker.HeartbeatAsync("doomed", first.Id, deviceSeconds: 7.5, completed: 3);
        Assert.Empty(ack.Stop);

        // No heartbeat for longer than the lease: the sweep declares the attempt lost and the task gets a new one.
        await farm.AdvanceAndSweepAsync(TimeSpan.FromSeconds(34));

        var retry = await _worker.WaitForAsync(
            db => db.Attempts.Where(a => a.TaskId == first.TaskId).OrderBy(a => a.Number).ToListAsync(),
            attempts => attempts.Count == 2 && attempts[1].State == AttemptState.Queued);
        Assert.Equal((AttemptState.Lost, "lost"), (retry[0].State, retry[0].FailureClass));
        await using (var db = farm.CreateDbContext())
        {
            var bill = Assert.Single(await db.Usage.Where(u => u.AttemptId == first.Id).ToListAsync());
            Assert.Equal(("lost", 7.5), (bill.Outcome, bill.DeviceSeconds));
            var task = await db.Tasks.SingleAsync(t => t.Id == first.TaskId);
            Assert.Equal((RenderTaskState.Dispatched, retry[1].Id), (task.State, task.CurrentAttemptId));
        }

        // The lost worker comes back: its heartbeat is told to stop, its late report changes and bills nothing.
        var late = await _worker.HeartbeatAsync("doomed", first.Id, deviceSeconds: 40, completed: 20);
        Assert.Contains(late.Stop, s => s.AttemptId == first.Id);
        await _worker.Bus.Publish(WorkerDouble.Succeeded(first.Id, 41, "doomed"));
        await _worker.WaitUntilEventsHandledAsync();
        await using (var db = farm.CreateDbContext())
        {
            var bill = Assert.Single(await db.Usage.Where(u => u.AttemptId == first.Id).ToListAsync());
            Assert.Equal(("lost", 7.5), (bill.Outcome, bill.DeviceSeconds));
            Assert.Equal(RenderTaskState.Dispatched, (await db.Tasks.SingleAsync(t => t.Id == first.TaskId)).State);
            Assert.Equal(AttemptState.Lost, (await db.Attempts.SingleAsync(a => a.Id == first.Id)).State);
        }

        await _worker.ClaimGrantedAsync(retry[1].Id, "healthy");
        var workers = await farm.Http.GetFromJsonAsync<List<WorkerStatus>>("/api/workers", SpecJson.Options);
        Assert.Equal("busy", workers!.Single(w => w.Id == "healthy").State);
    }

    [Fact]
    public async Task A_coordinator_outage_longer_than_the_lease_loses_no_attempt_whose_worker_keeps_beating()
    {
        // Regular sweeps for two leases first: a grace given for an earlier test's jump of the clock is then old
        // enough that this outage gets one of its own.
        await farm.AdvanceAndSweepAsync(TimeSpan.FromSeconds(62));
        var jobId = await _worker.SubmitAsync("it-outage");
        var first = (await _worker.WaitForAttemptsAsync(jobId, 3))["kf-00000"];
        await _worker.ClaimGrantedAsync(first.Id, "patient");
        await farm.AdvanceAndSweepAsync(TimeSpan.FromSeconds(2));

        // One jump of a minute: no sweep ran meanwhile (the database or the coordinator was down).
        farm.Clock.Advance(TimeSpan.FromSeconds(60));
        var lost = await farm.AdvanceAndSweepAsync(TimeSpan.FromSeconds(10));
        var ack = await _worker.HeartbeatAsync("patient", first.Id, deviceSeconds: 70, completed: 10);

        Assert.Equal(0, lost);
        Assert.Empty(ack.Stop);
        await using var db = farm.CreateDbContext();
        Assert.Equal(AttemptState.Claimed, (await db.Attempts.SingleAsync(a => a.Id == first.Id)).State);
    }

    [Fact]
    public async Task Sweeps_that_keep_running_late_get_one_grace_not_one_per_gap()
    {
        await farm.AdvanceAndSweepAsync(TimeSpan.FromSeconds(62));
        var jobId = await _worker.SubmitAsync("it-late-sweeps");
        var first = (await _worker.WaitForAttemptsAsync(jobId, 3))["kf-00000"];
        await _worker.ClaimGrantedAsync(first.Id, "silent");

        // Sweeps 20 s apart (a starved scheduler), the worker silent: the first late sweep renews the lease, the
        // following ones judge it, so the dead worker's task runs again after about two leases, not never.
        var sweeper = farm.Api.Services.GetRequiredService<LeaseSweeper>();
        var lostAfter = TimeSpan.Zero;
        while (lostAfter < TimeSpan.FromMinutes(3))
        {
            farm.Clock.Advance(TimeSpan.FromSeconds(20));
            lostAfter += TimeSpan.FromSeconds(20);
            await sweeper.SweepAsync(CancellationToken.None);
            await using var db = farm.CreateDbContext();
            if ((await db.Attempts.SingleAsync(a => a.Id == first.Id)).State == AttemptState.Lost)
            {
                break;
            }
        }

        Assert.InRange(lostAfter, TimeSpan.FromSeconds(40), TimeSpan.FromSeconds(80));
    }

    [Fact]
    public async Task Transient_failures_retry_with_backoff_and_fail_the_shot_when_retries_run_out()
    {
        var jobId = await _worker.SubmitAsync("it-retry", "retries: 2\n" + WorkerDouble.OneSecondShot);
        var taskId = (await _worker.WaitForAttemptsAsync(jobId, 3))["kf-00012"].TaskId;
        var backoffs = new List<TimeSpan>();
        for (var failure = 1; failure <= 3; failure++)
        {
            var attempt = await _worker.WaitForAsync(
                db => db.Attempts.Where(a => a.TaskId == taskId && a.State == AttemptState.Queued).SingleOrDefaultAsync(),
                a => a is not null);
            await _worker.ClaimGrantedAsync(attempt!.Id, $"flaky-{failure}");
            await _worker.Bus.Publish(WorkerDouble.Failed(attempt.Id, 1.0, "transient", "connection reset", $"flaky-{failure}"));
            var task = await _worker.WaitForAsync(db => db.Tasks.SingleAsync(t => t.Id == taskId), t => t.State is RenderTaskState.Ready or RenderTaskState.Failed);
            if (task.State == RenderTaskState.Ready)
            {
                backoffs.Add(task.NotBefore!.Value - task.ReadyAt!.Value);
                await using var db = farm.CreateDbContext();
                Assert.False(await db.Attempts.AnyAsync(a => a.TaskId == taskId && a.State == AttemptState.Queued), "a retry was dispatched before its backoff");
                farm.Clock.Advance(backoffs[^1]);
            }
        }

        Assert.Equal([TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(8)], backoffs);
        var status = await _worker.WaitForAsync(db => db.Jobs.SingleAsync(j => j.Id == jobId), j => j.State == JobState.Failed);
        Assert.Contains("gave up after 2 retries", status.Error, StringComparison.Ordinal);
        await using (var db = farm.CreateDbContext())
        {
            var attempts = await db.Attempts.Where(a => a.TaskId == taskId).OrderBy(a => a.Number).ToListAsync();
            Assert.Equal([AttemptState.Failed, AttemptState.Failed, AttemptState.Failed], attempts.Select(a => a.State));
            Assert.All(attempts, a => Assert.Equal("transient", a.FailureClass));
            Assert.Equal(3, await db.Usage.CountAsync(u => u.TaskId == taskId && u.Outcome == "failed"));
        }
    }

    [Fact]
    public async Task Out_of_memory_retries_with_half_the_batch_and_fatal_fails_at_once()
    {
        var jobId = await _worker.SubmitAsync("it-oom");
        var keyframes = await _worker.WaitForAttemptsAsync(jobId, 3);
        foreach (var key in new[] { "kf-00000", "kf-00012" })
        {
            await _worker.ClaimGrantedAsync(keyframes[key].Id, "small-gpu");
            await _worker.Bus.Publish(WorkerDouble.Succeeded(keyframes[key].Id, 1, "small-gpu"));
        }

        var segment = (await _worker.WaitForAttemptsAsync(jobId, 4))["seg-00000-00012"];
        await _worker.ClaimGrantedAsync(segment.Id, "small-gpu");
        await _worker.Bus.Publish(WorkerDouble.Failed(segment.Id, 2, "out-of-memory", "CUDA out of memory", "small-gpu"));

        // Eleven frames: the retry samples at most five at a time, at once (no backoff: the cause is known).
        var retried = await _worker.WaitForAsync(db => db.Tasks.SingleAsync(t => t.Id == segment.TaskId), t => t.State == RenderTaskState.Dispatched);
        Assert.Equal((1, (int?)5, (DateTime?)null), (retried.Failures, retried.MaxFrameBatch, retried.NotBefore));

        var third = keyframes["kf-00023"];
        await _worker.ClaimGrantedAsync(third.Id, "small-gpu");
        await _worker.Bus.Publish(WorkerDouble.Failed(third.Id, 2, "fatal", "model file missing", "small-gpu"));
        var job = await _worker.WaitForAsync(db => db.Jobs.SingleAsync(j => j.Id == jobId), j => j.State == JobState.Failed);
        Assert.Equal("shot fence: kf-00023 (fatal): model file missing", job.Error);
        await using var db = farm.CreateDbContext();
        Assert.Equal(1, await db.Attempts.CountAsync(a => a.TaskId == third.TaskId));
    }

    [Fact]
    public async Task A_worker_that_keeps_failing_a_job_is_blocked_while_others_can_work_and_forgiven_when_none_can()
    {
        var jobId = await _worker.SubmitAsync("it-block", "retries: 5\n" + WorkerDouble.OneSecondShot);
        await _worker.HeartbeatAsync("good", null);
        for (var i = 0; i < 2; i++)
        {
            var attempt = await _worker.WaitForAsync(
                db => db.Attempts.Join(db.Tasks.Where(t => t.JobId == jobId && t.Key == "kf-00000"), a => a.TaskId, t => t.Id, (a, t) => a).Where(a => a.State == AttemptState.Queued).SingleOrDefaultAsync(),
                a => a is not null);
            await _worker.ClaimGrantedAsync(attempt!.Id, "bad");
            await _worker.Bus.Publish(WorkerDouble.Failed(attempt.Id, 1, "transient", "segfault", "bad"));
            await _worker.WaitForAsync(db => db.Tasks.SingleAsync(t => t.Id == attempt.TaskId), t => t.State == RenderTaskState.Ready);
            farm.Clock.Advance(TimeSpan.FromSeconds(20));
            await _worker.HeartbeatAsync("good", null);
        }

        var status = await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options);
        Assert.Equal(["bad"], status!.BlockedWorkers);
        var next = await _worker.WaitForAsync(
            db => db.Attempts.Join(db.Tasks.Where(t => t.JobId == jobId), a => a.TaskId, t => t.Id, (a, t) => a).Where(a => a.State == AttemptState.Queued).FirstOrDefaultAsync(),
            a => a is not null);
        var refusal = await _worker.ClaimAsync(next!.Id, "bad");
        Assert.NotNull(refusal);
        Assert.Contains("blocked", refusal, StringComparison.Ordinal);

        // The good worker goes silent for longer than a lease: nobody else can take the work, so "bad" is forgiven.
        farm.Clock.Advance(TimeSpan.FromSeconds(31));
        var again = await _worker.WaitForAsync(
            db => db.Attempts.Join(db.Tasks.Where(t => t.JobId == jobId), a => a.TaskId, t => t.Id, (a, t) => a).Where(a => a.State == AttemptState.Queued).FirstOrDefaultAsync(),
            a => a is not null);
        await _worker.ClaimGrantedAsync(again!.Id, "bad");
        status = await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options);
        Assert.Empty(status!.BlockedWorkers!);
    }

    [Fact]
    public async Task Attempt_logs_from_heartbeats_and_reports_are_kept_once_and_served_per_task_and_attempt()
    {
        var jobId = await _worker.SubmitAsync("it-logs");
        var attempt = (await _worker.WaitForAttemptsAsync(jobId, 3))["kf-00012"];
        await _worker.ClaimGrantedAsync(attempt.Id, "chatty");
        AttemptLogEntry Line(int seq, string message) => new() { Seq = seq, At = DateTime.UtcNow, Level = "info", Message = message };
        await _worker.HeartbeatAsync("chatty", attempt.Id, log: [Line(1, "claimed"), Line(2, "step 1/4")]);
        await _worker.HeartbeatAsync("chatty", attempt.Id, log: [Line(2, "step 1/4"), Line(3, "step 2/4")]);
        await _worker.Bus.Publish(WorkerDouble.Failed(attempt.Id, 1, "fatal", "bad prompt", "chatty") with { Log = [Line(3, "step 2/4"), Line(4, "error: bad prompt\u0000")] });
        await _worker.WaitUntilEventsHandledAsync();

        var logs = await farm.Http.GetFromJsonAsync<LogPage>($"/api/jobs/{jobId}/logs?task=kf-00012&attempt=1", SpecJson.Options);

        var log = Assert.Single(logs!.Attempts);
        Assert.Equal(("kf-00012", 1, "Failed", "chatty"), (log.Task, log.Attempt, log.State, log.Worker));
        Assert.Equal(["claimed", "step 1/4", "step 2/4", "error: bad prompt?"], log.Lines.Select(l => l.Message));
        using var unknown = await farm.Http.GetAsync($"/api/jobs/{Guid.NewGuid()}/logs");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }
}
