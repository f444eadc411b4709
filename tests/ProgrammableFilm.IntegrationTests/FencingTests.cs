using System.Net;
using System.Text;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The coordinator against real PostgreSQL and RabbitMQ, with this test playing the worker: duplicate and stale
/// messages must change nothing and bill nothing twice.
/// </summary>
public class FencingTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    private const string OneSecondShot = """
        project: it-fencing
        shots:
          - {name: fence, prompt: a green bird falling in the forest, duration: 1, fps: 24, width: 64, height: 64, keyframeInterval: 12}
        """;

    private readonly WorkerDouble _worker = new(farm);

    private IBus Bus => _worker.Bus;

    [Fact]
    public async Task Duplicate_claims_and_duplicate_events_are_applied_once_and_billed_once()
    {
        var jobId = await SubmitAsync();
        var queued = await _worker.WaitForAsync(db => db.Attempts.Where(a => a.State == AttemptState.Queued).Join(db.Tasks.Where(t => t.JobId == jobId), a => a.TaskId, t => t.Id, (a, t) => a).ToListAsync(), list => list.Count == 3);
        var first = queued[0];
        Assert.Null(await _worker.ClaimAsync(first.Id, "worker-x"));
        var refused = await _worker.ClaimAsync(first.Id, "worker-y");
        Assert.Contains("Claimed", refused, StringComparison.Ordinal);

        var success = WorkerDouble.Succeeded(first.Id, deviceSeconds: 4.0);
        await Task.WhenAll(Bus.Publish(success), Bus.Publish(success), Bus.Publish(success));
        await Bus.Publish(WorkerDouble.Succeeded(Guid.NewGuid(), deviceSeconds: 50));
        var task = await _worker.WaitForAsync(db => db.Tasks.SingleAsync(t => t.CurrentAttemptId == first.Id), t => t.State == RenderTaskState.Succeeded);

        // Success and failure travel on different queues, so the failure is published only once the success is
        // applied: published together they would race, and the test would be about which queue is faster.
        await Bus.Publish(new TaskFailed { AttemptId = first.Id, WorkerId = "worker-x", ReportedAt = DateTime.UtcNow, Usage = success.Reports[0].Usage with { DeviceSeconds = 99 }, Classification = "transient", Reason = "late duplicate" });

        // Drained queues mean every duplicate above was handled; none may have ended in an error queue either.
        await BrokerQueues.WaitUntilHandledAsync($"{farm.QueuePrefix}task-succeeded", $"{farm.QueuePrefix}task-failed");
        Assert.Empty(await BrokerQueues.FaultedAsync(farm.QueuePrefix));
        await using var check = farm.CreateDbContext();
        var bills = await check.Usage.Where(u => u.JobId == jobId).ToListAsync();
        var bill = Assert.Single(bills);
        Assert.Equal((first.Id, 4.0, "succeeded"), (bill.AttemptId, bill.DeviceSeconds, bill.Outcome));
        Assert.Equal(AttemptState.Succeeded, (await check.Attempts.SingleAsync(a => a.Id == first.Id)).State);
        Assert.Equal(RenderTaskState.Succeeded, (await check.Tasks.SingleAsync(t => t.Id == task.Id)).State);
    }

    [Fact]
    public async Task A_segment_is_dispatched_only_after_both_of_its_keyframes_succeed()
    {
        var jobId = await SubmitAsync();
        var keyframeAttempts = await _worker.WaitForAsync(db => db.Attempts.Join(db.Tasks.Where(t => t.JobId == jobId), a => a.TaskId, t => t.Id, (a, t) => new { Attempt = a, t.Key }).ToListAsync(), list => list.Count == 3);
        var byKey = keyframeAttempts.ToDictionary(x => x.Key, x => x.Attempt.Id);

        await _worker.ClaimGrantedAsync(byKey["kf-00000"], "worker-x");
        await Bus.Publish(WorkerDouble.Succeeded(byKey["kf-00000"], 1));
        await _worker.WaitForAsync(db => db.Tasks.SingleAsync(t => t.JobId == jobId && t.Key == "kf-00000"), t => t.State == RenderTaskState.Succeeded);
        await using (var db = farm.CreateDbContext())
        {
            var segment = await db.Tasks.SingleAsync(t => t.JobId == jobId && t.Key == "seg-00000-00012");
            Assert.Equal((RenderTaskState.Blocked, 1), (segment.State, segment.PendingDependencies));
        }

        await _worker.ClaimGrantedAsync(byKey["kf-00012"], "worker-x");
        await Bus.Publish(WorkerDouble.Succeeded(byKey["kf-00012"], 1));
        var dispatched = await _worker.WaitForAsync(db => db.Tasks.SingleAsync(t => t.JobId == jobId && t.Key == "seg-00000-00012"), t => t.State == RenderTaskState.Dispatched);
        Assert.NotNull(dispatched.CurrentAttemptId);
        await using (var db = farm.CreateDbContext())
        {
            Assert.Equal(RenderTaskState.Blocked, (await db.Tasks.SingleAsync(t => t.JobId == jobId && t.Key == "seg-00012-00023")).State);
            Assert.Equal(RenderTaskState.Blocked, (await db.Tasks.SingleAsync(t => t.JobId == jobId && t.Key == "assemble")).State);
        }
    }

    private async Task<Guid> SubmitAsync()
    {
        using var content = new StringContent(OneSecondShot, Encoding.UTF8, "application/yaml");
        using var response = await farm.Http.PostAsync("/api/projects/it-fencing/jobs", content);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return Guid.Parse(response.Headers.Location!.OriginalString.Split('/')[^1]);
    }
}
