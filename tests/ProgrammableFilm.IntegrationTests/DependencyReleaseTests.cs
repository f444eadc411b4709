using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A keyframe's success releases each dependant exactly once, however often the event is delivered: a second release
/// would start a segment before its other keyframe exists.
/// </summary>
public class DependencyReleaseTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task A_keyframe_success_delivered_many_times_at_once_counts_once_and_the_segment_waits_for_its_other_keyframe()
    {
        var jobId = await _worker.SubmitAsync("it-release");
        var attempts = await _worker.WaitForAttemptsAsync(jobId, 3);
        var (first, second) = (attempts["kf-00000"], attempts["kf-00012"]);
        Assert.Equal((RenderTaskState.Blocked, 2), await TaskStateAsync(jobId, "seg-00000-00012"));

        await _worker.ClaimGrantedAsync(first.Id, "worker-x");
        var success = WorkerDouble.Succeeded(first.Id, deviceSeconds: 2);
        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => _worker.Bus.Publish(success)));
        for (var i = 0; i < 3; i++)
        {
            await _worker.Bus.Publish(success);
        }

        await _worker.WaitUntilEventsHandledAsync();
        await using (var db = farm.CreateDbContext())
        {
            Assert.Equal(RenderTaskState.Succeeded, (await db.Tasks.SingleAsync(t => t.Id == first.TaskId)).State);
            Assert.Equal((RenderTaskState.Blocked, 1), await TaskStateAsync(jobId, "seg-00000-00012"));
            Assert.Equal((RenderTaskState.Blocked, 4), await TaskStateAsync(jobId, "assemble"));
            Assert.Equal(0, await AttemptsOfAsync(jobId, "seg-00000-00012"));
            Assert.Equal(1, await db.Usage.CountAsync(u => u.AttemptId == first.Id));
        }

        await _worker.ClaimGrantedAsync(second.Id, "worker-x");
        var secondSuccess = WorkerDouble.Succeeded(second.Id, deviceSeconds: 2);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => _worker.Bus.Publish(secondSuccess)));
        await _worker.WaitUntilEventsHandledAsync();

        // Released once: dispatched once, with nothing left pending. Its neighbour, which needs kf-00023 as well, is
        // down to one, and assembly counted each keyframe once.
        var segment = await _worker.WaitForAsync(
            db => db.Tasks.SingleAsync(t => t.JobId == jobId && t.Key == "seg-00000-00012"),
            t => t.State == RenderTaskState.Dispatched);
        Assert.Equal(0, segment.PendingDependencies);
        Assert.Equal(1, await AttemptsOfAsync(jobId, "seg-00000-00012"));
        Assert.Equal((RenderTaskState.Blocked, 1), await TaskStateAsync(jobId, "seg-00012-00023"));
        Assert.Equal((RenderTaskState.Blocked, 3), await TaskStateAsync(jobId, "assemble"));
    }

    private async Task<(RenderTaskState State, int Pending)> TaskStateAsync(Guid jobId, string key)
    {
        await using var db = farm.CreateDbContext();
        var task = await db.Tasks.SingleAsync(t => t.JobId == jobId && t.Key == key);
        return (task.State, task.PendingDependencies);
    }

    private async Task<int> AttemptsOfAsync(Guid jobId, string key)
    {
        await using var db = farm.CreateDbContext();
        return await db.Attempts.CountAsync(a => db.Tasks.Any(t => t.Id == a.TaskId && t.JobId == jobId && t.Key == key));
    }
}
