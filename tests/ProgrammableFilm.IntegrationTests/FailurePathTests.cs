using System.Net.Http.Json;
using System.Text.Json;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Costs;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A <c>fatal</c> failure (bad parameters: retrying cannot help) fails the task, its shot and its job at once, with
/// the reason, and still bills the device time it spent.
/// </summary>
public class FailurePathTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    private const string Reason = "guidance 29 diverges for this model at 64x64";

    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task A_fatal_failure_fails_attempt_task_shot_and_job_with_the_reason_stops_the_shot_and_bills_the_attempt_once()
    {
        var jobId = await _worker.SubmitAsync("it-failure");
        var failing = (await _worker.WaitForAttemptsAsync(jobId, 3))["kf-00012"];
        await _worker.ClaimGrantedAsync(failing.Id, "worker-x");

        var failure = WorkerDouble.Failed(failing.Id, deviceSeconds: 3.5, "fatal", Reason);
        await Task.WhenAll(_worker.Bus.Publish(failure), _worker.Bus.Publish(failure));
        await _worker.WaitUntilEventsHandledAsync();

        await using var db = farm.CreateDbContext();
        var expectedReason = $"kf-00012 (fatal): {Reason}";
        var attempt = await db.Attempts.SingleAsync(a => a.Id == failing.Id);
        Assert.Equal((AttemptState.Failed, expectedReason), (attempt.State, attempt.Error));
        Assert.NotNull(attempt.FinishedAt);
        var tasks = await db.Tasks.Where(t => t.JobId == jobId).ToDictionaryAsync(t => t.Key, StringComparer.Ordinal);
        Assert.Equal((RenderTaskState.Failed, expectedReason), (tasks["kf-00012"].State, tasks["kf-00012"].Error));
        var shot = await db.Shots.SingleAsync(s => s.JobId == jobId);
        Assert.Equal((ShotState.Failed, expectedReason), (shot.State, shot.Error));
        Assert.NotNull(shot.FinishedAt);
        var job = await db.Jobs.SingleAsync(j => j.Id == jobId);
        Assert.Equal((JobState.Failed, $"shot fence: {expectedReason}"), (job.State, job.Error));
        Assert.NotNull(job.FinishedAt);

        // The tasks that were waiting will never be dispatched: they did not fail themselves, they are cancelled.
        Assert.DoesNotContain(tasks.Values, t => t.State is RenderTaskState.Ready or RenderTaskState.Blocked);
        foreach (var key in new[] { "seg-00000-00012", "seg-00012-00023", "assemble" })
        {
            Assert.Equal((RenderTaskState.Cancelled, "shot fence failed"), (tasks[key].State, tasks[key].Error));
        }

        var bill = Assert.Single(await db.Usage.Where(u => u.JobId == jobId).ToListAsync());
        var price = PriceTable.Default.For("cpu").DollarsPerHour;
        Assert.Equal((failing.Id, "failed", 3.5, "worker-x"), (bill.AttemptId, bill.Outcome, bill.DeviceSeconds, bill.WorkerId));
        Assert.Equal(CostCalculator.Cost(3.5, price), bill.Cost);

        var status = (await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options))!;
        Assert.Equal(("Failed", job.Error), (status.State, status.Error));
        Assert.Equal(bill.Cost, status.Cost);
        var shotStatus = Assert.Single(status.Shots);
        Assert.Equal(("Failed", expectedReason, bill.Cost), (shotStatus.State, shotStatus.Error, shotStatus.Cost));

        // A failed job gets its cost summary too: the time was spent.
        var summary = JsonSerializer.Deserialize<JobCost>(await File.ReadAllTextAsync(Path.Combine(farm.StorageRoot, ShotStorage.CostSummaryPath(jobId))), SpecJson.Options)!;
        Assert.Equal((bill.Cost, 1), (summary.Cost, summary.Attempts));
    }

    [Fact]
    public async Task A_task_already_dispatched_when_its_shot_fails_can_no_longer_be_claimed()
    {
        var jobId = await _worker.SubmitAsync("it-failure");
        var attempts = await _worker.WaitForAttemptsAsync(jobId, 3);
        await _worker.ClaimGrantedAsync(attempts["kf-00012"].Id, "worker-x");
        await _worker.Bus.Publish(WorkerDouble.Failed(attempts["kf-00012"].Id, deviceSeconds: 1, "fatal", Reason));
        await _worker.WaitUntilEventsHandledAsync();
        await using (var check = farm.CreateDbContext())
        {
            Assert.Equal(JobState.Failed, (await check.Jobs.SingleAsync(j => j.Id == jobId)).State);
        }

        // kf-00000's message is still in the pool's queue. The shot is failed, so a worker that takes it must be told
        // not to spend device time on it, and the task must not start.
        var late = await _worker.ClaimAsync(attempts["kf-00000"].Id, "worker-y");

        await using var db = farm.CreateDbContext();
        var sibling = await db.Tasks.SingleAsync(t => t.Id == attempts["kf-00000"].TaskId);
        Assert.True(late is not null, $"a task of the failed shot was handed to a worker; the task is now {sibling.State}");
        Assert.NotEqual(RenderTaskState.Running, sibling.State);
    }
}
