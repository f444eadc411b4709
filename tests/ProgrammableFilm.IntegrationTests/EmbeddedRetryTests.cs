using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>A retry's count of each task's unfinished dependencies on SQLite, as the embedded farm runs it.</summary>
public class EmbeddedRetryTests
{
    [Fact]
    public async Task On_sqlite_a_retried_job_waits_only_for_the_dependencies_that_did_not_succeed()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-embedded-retry");
        await using var services = new ServiceCollection().AddLogging()
            .AddCoordinator(DatabaseOptions.Sqlite(Path.Combine(folder, "pfilm.db")), new CoordinatorOptions(), new ShotStorage(folder))
            .BuildServiceProvider();
        await services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
        var spec = JobSpecReader.ReadYaml("""
            project: it-embedded
            shots:
              - {name: a, prompt: a green bird, duration: 1, fps: 24, width: 64, height: 64, keyframeInterval: 12}
            """).Spec!;
        var job = await services.GetRequiredService<JobSubmission>().SubmitAsync(spec, CancellationToken.None);
        var control = services.GetRequiredService<JobControl>();
        var contexts = services.GetRequiredService<IDbContextFactory<FarmDbContext>>();

        // The first keyframe rendered, then the job was cancelled.
        await using (var db = await contexts.CreateDbContextAsync())
        {
            await db.Tasks.Where(t => t.JobId == job.Id && t.Key == "kf-00000").ExecuteUpdateAsync(set => set.SetProperty(t => t.State, RenderTaskState.Succeeded));
        }

        Assert.Equal(ControlResult.Done, await control.CancelJobAsync(job.Id, CancellationToken.None));
        Assert.Equal(ControlResult.Done, await control.RetryAsync(job.Id, CancellationToken.None));

        await using (var db = await contexts.CreateDbContextAsync())
        {
            var tasks = await db.Tasks.AsNoTracking().Where(t => t.JobId == job.Id).OrderBy(t => t.Key).Select(t => new { t.Key, t.State, t.PendingDependencies }).ToListAsync();
            Assert.Equal(
                [
                    ("assemble", RenderTaskState.Blocked, 4),
                    ("kf-00000", RenderTaskState.Succeeded, 0),
                    ("kf-00012", RenderTaskState.Ready, 0),
                    ("kf-00023", RenderTaskState.Ready, 0),
                    ("seg-00000-00012", RenderTaskState.Blocked, 1),
                    ("seg-00012-00023", RenderTaskState.Blocked, 2),
                ],
                tasks.Select(t => (t.Key, t.State, t.PendingDependencies)));
        }
    }
}
