using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The coordinator without workers, planning jobs of more than 20,000 tasks in the background.</summary>
public sealed class BackgroundPlanningFixture : FarmFixture
{
    protected override int WorkerCount => 0;

    protected override IReadOnlyDictionary<string, string> ExtraSettings => new Dictionary<string, string>
    {
        ["Coordinator:PlanInBackgroundAbove"] = "20000",
    };
}

public class BackgroundPlanningTests(BackgroundPlanningFixture farm) : IClassFixture<BackgroundPlanningFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    /// <summary>Three shots of 10,000 one-frame keyframes and an assembly: 30,003 tasks.</summary>
    private const string ThreeLongShots = """
        shots:
          - {name: a, prompt: a red cube, duration: 100, fps: 100, width: 64, height: 64, keyframeInterval: 1}
          - {name: b, prompt: a red cube, duration: 100, fps: 100, width: 64, height: 64, keyframeInterval: 1}
          - {name: c, prompt: a red cube, duration: 100, fps: 100, width: 64, height: 64, keyframeInterval: 1}
        """;

    [Fact]
    public async Task A_big_job_is_accepted_as_planning_shows_its_progress_and_is_dispatched_only_once_planned()
    {
        using var content = new StringContent($"project: it-planning\n{ThreeLongShots}", Encoding.UTF8, "application/yaml");
        using var response = await farm.Http.PostAsync("/api/projects/it-planning/jobs", content);
        var accepted = await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options);
        var seen = new List<JobStatus>();
        var planned = await _worker.WaitForAsync(
            async _ =>
            {
                var status = (await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{accepted!.Id}", SpecJson.Options))!;
                seen.Add(status);
                return status;
            },
            status => status.State != "Planning");
        var attempts = await _worker.WaitForAttemptsAsync(accepted!.Id, 1);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(("Planning", 30_003), (accepted.State, accepted.TasksTotal));
        Assert.True(accepted.TasksPlanned < 30_003);
        Assert.Equal(("Queued", 30_003, 30_003), (planned.State, planned.TasksTotal, planned.TasksPlanned));
        Assert.All(seen.Where(s => s.State == "Planning"), s => Assert.Contains(s.TasksPlanned, new[] { 0, 10_001, 20_002 }));
        await using var db = farm.CreateDbContext();
        Assert.Equal(30_003, await db.Tasks.CountAsync(t => t.JobId == accepted.Id));
        var lastPlanned = await db.Shots.Where(s => s.JobId == accepted.Id).MaxAsync(s => s.PlannedAt);
        Assert.All(attempts.Values, a => Assert.True(a.CreatedAt >= lastPlanned, "an attempt was dispatched before the job was fully planned"));
    }

    [Fact]
    public async Task Once_a_big_job_is_planned_the_tasks_are_analyzed_and_a_task_is_found_by_its_attempt_through_an_index()
    {
        using var content = new StringContent($"project: it-statistics\n{ThreeLongShots}", Encoding.UTF8, "application/yaml");
        using var response = await farm.Http.PostAsync("/api/projects/it-statistics/jobs", content);
        var accepted = await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options);
        await _worker.WaitForAsync(db => db.Jobs.AsNoTracking().SingleAsync(j => j.Id == accepted!.Id), j => j.State != JobState.Planning);
        await using var db = farm.CreateDbContext();
        var lastPlanned = (await db.Shots.Where(s => s.JobId == accepted!.Id).MaxAsync(s => s.PlannedAt))!.Value;

        // Autovacuum records its own analyses as last_autoanalyze: last_analyze is the coordinator's.
        var analyzed = await _worker.WaitForAsync(
            context => context.Database.SqlQuery<DateTime?>($"SELECT last_analyze AS \"Value\" FROM pg_stat_user_tables WHERE relname = 'tasks'").SingleAsync(),
            at => at >= lastPlanned);

        // How a worker's success finds its task (as TaskEvents sends it): by its attempt, among 30,003 Ready tasks.
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync();
        await using var explain = connection.CreateCommand();
        explain.CommandText = $"EXPLAIN UPDATE tasks AS t SET state = 'Succeeded' WHERE t.current_attempt_id = ANY(ARRAY['{Guid.CreateVersion7()}'::uuid]) AND t.state = 'Running'";
        var lines = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                lines.Add(reader.GetString(0));
            }
        }

        var plan = string.Join('\n', lines);

        // With no worker to run it, its attempts would fill the queue the other tests' jobs are dispatched to.
        using var cancelled = await farm.Http.PostAsync($"/api/jobs/{accepted!.Id}/cancel", null);

        Assert.True(analyzed >= lastPlanned);
        Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        Assert.Contains("ix_tasks_live_attempt", plan);
        Assert.DoesNotContain("Seq Scan", plan);
    }

    [Fact]
    public async Task A_job_left_planning_by_a_coordinator_that_died_is_planned_by_the_next_pass()
    {
        var now = DateTime.UtcNow;
        var job = new Job { Id = Guid.CreateVersion7(), Project = "it-resume", Lane = "batch", Priority = 50, State = JobState.Planning, SpecJson = "{}", CreatedAt = now, Retries = 3, TaskCount = 2 * 13 };
        await using (var db = farm.CreateDbContext())
        {
            db.Jobs.Add(job);
            for (var ordinal = 0; ordinal < 2; ordinal++)
            {
                // 12 frames, a keyframe every 2 frames and the last: 7 keyframes, 5 segments and an assembly.
                var shotId = Guid.CreateVersion7();
                db.Shots.Add(new Shot
                {
                    Id = shotId,
                    LineageId = shotId,
                    JobId = job.Id,
                    Ordinal = ordinal,
                    Name = $"s{ordinal}",
                    ShotName = $"s{ordinal}",
                    Prompt = "a red cube",
                    DurationSeconds = 1,
                    Fps = 12,
                    Width = 64,
                    Height = 64,
                    Steps = 4,
                    Guidance = 3,
                    Seed = ordinal,
                    Engine = "procedural",
                    KeyframeInterval = 2,
                    FrameCount = 12,
                    State = ShotState.Queued,
                    Folder = $"{job.Id}/s{ordinal}",
                    TaskCount = 13,
                });
            }

            await db.SaveChangesAsync();
        }

        var planned = await _worker.WaitForAsync(db => db.Jobs.AsNoTracking().SingleAsync(j => j.Id == job.Id), j => j.State != JobState.Planning);

        Assert.Equal(JobState.Queued, planned.State);
        await using var check = farm.CreateDbContext();
        Assert.Equal(26, await check.Tasks.CountAsync(t => t.JobId == job.Id));
        Assert.Equal(0, await check.Shots.CountAsync(s => s.JobId == job.Id && s.PlannedAt == null));
    }
}
