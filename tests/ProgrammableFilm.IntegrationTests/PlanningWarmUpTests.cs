using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>A farm whose coordinator rehearses planning at its start, as a deployed one does (the suite's other farms do not).</summary>
public sealed class PlanningWarmUpFixture : FarmFixture
{
    public const int Tasks = 2_000;

    protected override int WorkerCount => 0;

    protected override IReadOnlyDictionary<string, string> ExtraSettings => new Dictionary<string, string>
    {
        ["Coordinator:PlanningWarmUpTasks"] = $"{Tasks}",
    };
}

public class PlanningWarmUpTests(PlanningWarmUpFixture farm) : IClassFixture<PlanningWarmUpFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task The_warm_up_writes_its_rehearsed_jobs_through_the_real_path_and_leaves_nothing_of_them()
    {
        // PostgreSQL counts every row inserted, kept or rolled back: three rehearsals of 2,000 keyframes and an assembly.
        var inserted = await _worker.WaitForAsync(
            db => db.Database.SqlQueryRaw<long>("SELECT n_tup_ins AS \"Value\" FROM pg_stat_user_tables WHERE relname = 'tasks'").SingleAsync(),
            rows => rows >= 3 * (PlanningWarmUpFixture.Tasks + 1));

        await using var db = farm.CreateDbContext();
        Assert.Equal(3 * (PlanningWarmUpFixture.Tasks + 1), inserted);
        Assert.Equal(0, await db.Jobs.CountAsync());
        Assert.Equal(0, await db.Shots.CountAsync());
        Assert.Equal(0, await db.Tasks.CountAsync());
        Assert.Equal(0, await db.TaskDependencies.CountAsync());

        using var content = new StringContent("project: it-warm\nshots:\n  - {name: a, prompt: a red cube, duration: 1, fps: 24, width: 64, height: 64}\n", Encoding.UTF8, "application/yaml");
        using var response = await farm.Http.PostAsync("/api/projects/it-warm/jobs", content);
        var accepted = await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal([accepted!.Id], await db.Jobs.Select(j => j.Id).ToListAsync());
    }
}
