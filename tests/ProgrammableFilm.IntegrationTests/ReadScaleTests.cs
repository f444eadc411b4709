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
        var later = await _worker.WaitForAsync(
            _ => farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options)!,
            status => status!.TasksSucceeded == 6);

        Assert.Equal((6, 0), (before!.TasksTotal, before.TasksSucceeded));
        Assert.NotNull(before.CountedAt);
        // The second read came before the roll-up was 5 s old: it read the counts, not the tasks.
        Assert.Equal((0, before.CountedAt), (soon!.TasksSucceeded, soon.CountedAt));
        Assert.Equal(1.0, later!.Shots[0].Progress, 3);
        Assert.True(later.CountedAt > before.CountedAt);
    }

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
