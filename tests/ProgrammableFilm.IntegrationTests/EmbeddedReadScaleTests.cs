using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The read and planning paths of issue 14 on SQLite, as the embedded farm runs them (no host, no bus).</summary>
public class EmbeddedReadScaleTests
{
    [Fact]
    public async Task On_sqlite_a_big_job_is_planned_in_the_background_counted_from_its_roll_ups_and_its_logs_paged()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-embedded-reads");
        var options = new CoordinatorOptions { StatusRollupAbove = 3, PlanInBackgroundAbove = 10 };
        await using var services = new ServiceCollection().AddLogging()
            .AddCoordinator(DatabaseOptions.Sqlite(Path.Combine(folder, "pfilm.db")), options, new ShotStorage(folder))
            .BuildServiceProvider();
        await services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
        var spec = JobSpecReader.ReadYaml("""
            project: it-embedded
            shots:
              - {name: a, prompt: a green bird, duration: 1, fps: 24, width: 64, height: 64, keyframeInterval: 12}
              - {name: b, prompt: a green bird, duration: 1, fps: 24, width: 64, height: 64, keyframeInterval: 12}
            """).Spec!;
        var reports = services.GetRequiredService<JobReports>();
        var planner = services.GetRequiredService<BackgroundPlanner>();

        var job = await services.GetRequiredService<JobSubmission>().SubmitAsync(spec, CancellationToken.None);
        var planning = await reports.StatusAsync(job.Id, CancellationToken.None);
        Assert.True(await planner.PlanNextShotAsync(CancellationToken.None));
        var halfway = await reports.StatusAsync(job.Id, CancellationToken.None);
        while (await planner.PlanNextShotAsync(CancellationToken.None))
        {
        }

        var planned = await reports.StatusAsync(job.Id, CancellationToken.None);
        var now = DateTime.UtcNow;
        await using (var db = await services.GetRequiredService<IDbContextFactory<FarmDbContext>>().CreateDbContextAsync())
        {
            var tasks = await db.Tasks.Where(t => t.JobId == job.Id && t.Kind == "keyframe").OrderBy(t => t.Id).Take(3).ToListAsync();
            var costs = new[] { 0.000123m, 0.5m, 1.25m };
            for (var i = 0; i < 3; i++)
            {
                var attempt = new Attempt
                {
                    Id = Guid.CreateVersion7(),
                    TaskId = tasks[i].Id,
                    Number = 1,
                    State = AttemptState.Succeeded,
                    Pool = "cpu",
                    WorkerId = "w",
                    CreatedAt = now,
                };
                db.Attempts.Add(attempt);
                db.Usage.Add(new UsageRecord
                {
                    AttemptId = attempt.Id,
                    TaskId = tasks[i].Id,
                    ShotId = tasks[i].ShotId,
                    JobId = job.Id,
                    Project = "it-embedded",
                    WorkerId = "w",
                    DeviceSku = "cpu",
                    DeviceCount = 1,
                    DeviceSeconds = 10,
                    EnergyJoules = 120,
                    EnergyEstimated = true,
                    DollarsPerHour = 0.04m,
                    Cost = costs[i],
                    Outcome = "succeeded",
                    RecordedAt = now,
                });
            }

            await db.SaveChangesAsync();
        }

        var cost = await reports.CostAsync(job.Id, CancellationToken.None);
        var costed = await reports.StatusAsync(job.Id, CancellationToken.None);
        var listed = Assert.Single(await ActivatorUtilities.CreateInstance<DashboardReports>(services).ProjectJobsAsync("it-embedded", 10, CancellationToken.None));
        var first = await reports.LogsAsync(job.Id, null, null, LogCursor.Start, 2, CancellationToken.None);
        Assert.True(LogCursor.TryParse(first!.Next, out var cursor));
        var second = await reports.LogsAsync(job.Id, null, null, cursor, 2, CancellationToken.None);

        Assert.Equal(("Planning", 12, 0), (planning!.State, planning.TasksTotal, planning.TasksPlanned));
        Assert.Equal(("Planning", 6), (halfway!.State, halfway.TasksPlanned));
        Assert.Equal(("Queued", 12, 0), (planned!.State, planned.TasksPlanned, planned.TasksSucceeded));
        Assert.NotNull(planned.CountedAt);
        Assert.Equal((1.750123m, 3, 30.0), (cost!.Cost, cost.Attempts, cost.DeviceSeconds));
        Assert.Equal(1.750123m, costed!.Cost);
        Assert.Equal((costed.TasksTotal, costed.TasksSucceeded, costed.Progress, costed.Cost), (listed.TasksTotal, listed.TasksSucceeded, listed.Progress, listed.CostUsd));
        Assert.Equal(2, first.Attempts.Count);
        Assert.Single(second!.Attempts);
        Assert.Null(second.Next);
    }
}
