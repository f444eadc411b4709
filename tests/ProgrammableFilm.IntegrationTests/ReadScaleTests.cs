using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The coordinator without workers, counting jobs of more than 3 tasks from a roll-up at most 5 s old.</summary>
public sealed class RolledUpStatusFixture : FarmFixture
{
    protected override int WorkerCount => 0;

    protected override IReadOnlyDictionary<string, string> ExtraSettings => new Dictionary<string, string>
    {
        ["Coordinator:StatusRollupAbove"] = "3",
        ["Coordinator:StatusRollupMaxAge"] = "00:00:05",
    };
}

public class ReadScaleTests(RolledUpStatusFixture farm) : IClassFixture<RolledUpStatusFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task A_big_jobs_status_counts_its_tasks_from_a_roll_up_not_on_every_read()
    {
        var jobId = await _worker.SubmitAsync("it-rollup");
        var before = await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options);
        await using (var db = farm.CreateDbContext())
        {
            await db.Tasks.Where(t => t.JobId == jobId).ExecuteUpdateAsync(t => t.SetProperty(x => x.State, Data.Entities.RenderTaskState.Succeeded).SetProperty(x => x.Progress, 1.0));
        }

        var soon = await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options);
        var pastTheAge = before!.CountedAt!.Value + TimeSpan.FromSeconds(5.1) - DateTime.UtcNow;
        await Task.Delay(pastTheAge > TimeSpan.Zero ? pastTheAge : TimeSpan.Zero);
        var stale = await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options);
        var later = await _worker.WaitForAsync(
            _ => farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options)!,
            status => status!.TasksSucceeded == 6);

        Assert.Equal((6, 0), (before.TasksTotal, before.TasksSucceeded));
        Assert.NotNull(before.CountedAt);
        // The second read came before the roll-up was 5 s old: it read the counts, not the tasks.
        Assert.Equal((0, before.CountedAt), (soon!.TasksSucceeded, soon.CountedAt));
        // The first read past the age does not wait for the recount it starts: it is answered from the previous count.
        Assert.Equal((0, before.CountedAt), (stale!.TasksSucceeded, stale.CountedAt));
        Assert.Equal(1.0, later!.Shots[0].Progress, 3);
        Assert.True(later.CountedAt > before.CountedAt);
    }

    [Fact]
    public async Task A_big_job_with_no_roll_up_is_counted_in_its_first_status_read()
    {
        // A job that was small when planned and is big under a lowered StatusRollupAbove has no roll-up row.
        var jobId = await _worker.SubmitAsync("it-rollup-none");
        await using (var db = farm.CreateDbContext())
        {
            await db.TaskCountRollups.Where(r => r.JobId == jobId).ExecuteDeleteAsync();
            await db.ShotTaskCounts.Where(c => c.JobId == jobId).ExecuteDeleteAsync();
            await db.Tasks.Where(t => t.JobId == jobId).ExecuteUpdateAsync(t => t.SetProperty(x => x.State, Data.Entities.RenderTaskState.Succeeded).SetProperty(x => x.Progress, 1.0));
        }

        var status = await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options);

        Assert.Equal((6, 6), (status!.TasksTotal, status.TasksSucceeded));
        Assert.NotNull(status.CountedAt);
    }

    [Fact]
    public async Task A_big_jobs_dashboard_progress_and_cost_are_its_status_figures_from_the_same_roll_ups()
    {
        var jobId = await _worker.SubmitAsync("it-rollup-progress");
        var attempts = await _worker.WaitForAttemptsAsync(jobId, 3);
        await _worker.ClaimGrantedAsync(attempts["kf-00000"].Id, "worker-progress");
        await _worker.Bus.Publish(WorkerDouble.Succeeded(attempts["kf-00000"].Id, 7, "worker-progress"));
        await _worker.WaitUntilEventsHandledAsync();
        var status = await _worker.WaitForAsync(
            _ => farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options)!,
            s => s!.TasksSucceeded == 1 && s.Cost > 0);

        var progress = await ProgressAsync(jobId);
        decimal billed;
        await using (var db = farm.CreateDbContext())
        {
            billed = await db.Usage.Where(u => u.JobId == jobId).SumAsync(u => u.Cost);
            await db.Tasks.Where(t => t.JobId == jobId).ExecuteUpdateAsync(t => t.SetProperty(x => x.State, Data.Entities.RenderTaskState.Succeeded).SetProperty(x => x.Progress, 1.0));
        }

        var afterwards = await ProgressAsync(jobId);

        Assert.Equal((6, 1, billed), (status!.TasksTotal, status.TasksSucceeded, status.Cost));
        Assert.Equal((status.TasksTotal, status.TasksSucceeded, status.Cost), (progress.TasksTotal, progress.TasksSucceeded, progress.CostUsd));
        Assert.Equal(status.Progress, progress.Progress, 9);
        Assert.InRange(progress.Progress, 0.01, 0.99);
        // Read within the roll-up's 5 s: the list counts no task itself, so it agrees with the status until the recount.
        Assert.Equal(1, afterwards.TasksSucceeded);
    }

    [Fact]
    public async Task A_shot_timeline_longer_than_its_limit_lists_exactly_limit_attempts_of_its_first_tasks_and_says_so()
    {
        var jobId = await _worker.SubmitAsync("it-timeline-page");
        var attempts = await _worker.WaitForAttemptsAsync(jobId, 3);
        Guid shotId;
        await using (var db = farm.CreateDbContext())
        {
            shotId = await db.Shots.Where(s => s.JobId == jobId).Select(s => s.Id).SingleAsync();
        }

        var page = await farm.Http.GetFromJsonAsync<ShotTimeline>($"/api/shots/{shotId}/timeline?limit=2", SpecJson.Options);
        var whole = await farm.Http.GetFromJsonAsync<ShotTimeline>($"/api/shots/{shotId}/timeline?limit=3", SpecJson.Options);

        Assert.True(page!.Truncated);
        Assert.Equal(new[] { attempts["kf-00000"].Id, attempts["kf-00012"].Id }.Order(), page.Attempts.Select(a => a.Id).Order());
        Assert.False(whole!.Truncated);
        Assert.Equal(attempts.Values.Select(a => a.Id).Order(), whole.Attempts.Select(a => a.Id).Order());
        Assert.Equal(whole.Attempts.OrderBy(a => a.CreatedAt).ThenBy(a => a.Id).Select(a => a.Id), whole.Attempts.Select(a => a.Id));
    }

    private async Task<JobProgress> ProgressAsync(Guid jobId) =>
        Assert.Single((await farm.Http.GetFromJsonAsync<List<JobProgress>>("/api/projects/it-rollup-progress/jobs/progress", SpecJson.Options))!, j => j.Id == jobId);

    [Fact]
    public async Task A_jobs_logs_come_a_page_at_a_time_in_task_order_and_every_attempt_once()
    {
        var jobId = await _worker.SubmitAsync("it-log-pages");
        var attempts = await _worker.WaitForAttemptsAsync(jobId, 3);

        var first = await farm.Http.GetFromJsonAsync<LogPage>($"/api/jobs/{jobId}/logs?limit=2", SpecJson.Options);
        var second = await farm.Http.GetFromJsonAsync<LogPage>($"/api/jobs/{jobId}/logs?limit=2&after={first!.Next}", SpecJson.Options);
        using var badCursor = await farm.Http.GetAsync($"/api/jobs/{jobId}/logs?after=not-a-cursor");
        using var badLimit = await farm.Http.GetAsync($"/api/jobs/{jobId}/logs?limit=0");

        Assert.Equal(2, first.Attempts.Count);
        Assert.NotNull(first.Next);
        Assert.Single(second!.Attempts);
        Assert.Null(second.Next);
        var expected = attempts.Values.OrderBy(a => a.TaskId.ToString("N")).Select(a => a.Id);
        Assert.Equal(expected, first.Attempts.Concat(second.Attempts).Select(a => a.AttemptId));
        Assert.All(new[] { badCursor, badLimit }, response =>
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        });
    }
}
