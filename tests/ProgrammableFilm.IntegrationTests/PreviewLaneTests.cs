using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The preview lane gets into a pool's queue that batch work has filled (PostgreSQL, RabbitMQ, nobody consuming).</summary>
public class PreviewLaneTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task A_preview_job_is_dispatched_into_a_queue_that_batch_work_has_filled_and_the_batch_gets_no_more_room()
    {
        // 480 one-frame keyframes: more than the queue holds, so the batch job keeps Ready tasks it cannot send.
        var batch = await _worker.SubmitAsync("it-lanes", """
            lane: batch
            shots:
              - {name: long, prompt: a red ball rolling in the desert, duration: 20, fps: 24, width: 64, height: 64, keyframeInterval: 1}
            """);
        var queuedBatch = await _worker.WaitForAsync(
            async db => (Queued: await QueuedAsync(db, batch), Ready: await db.Tasks.CountAsync(t => t.JobId == batch && t.State == RenderTaskState.Ready)),
            counts => counts.Queued > 0 && counts.Ready > 0);
        await Task.Delay(TimeSpan.FromSeconds(1));
        await using (var db = farm.CreateDbContext())
        {
            Assert.Equal(queuedBatch.Queued, await QueuedAsync(db, batch));
        }

        var preview = await _worker.SubmitAsync("it-lanes", """
            lane: preview
            shots:
              - {name: look, prompt: a green bird in the forest, duration: 1, fps: 24, width: 64, height: 64, keyframeInterval: 12}
            """);
        var attempts = await _worker.WaitForAttemptsAsync(preview, 3);
        Assert.Equal(["kf-00000", "kf-00012", "kf-00023"], attempts.Keys.Order());

        await using (var db = farm.CreateDbContext())
        {
            Assert.Equal(queuedBatch.Queued, await QueuedAsync(db, batch));
        }
    }

    private static Task<int> QueuedAsync(Data.FarmDbContext db, Guid jobId) =>
        db.Attempts.CountAsync(a => a.State == AttemptState.Queued && db.Tasks.Any(t => t.Id == a.TaskId && t.JobId == jobId));
}
