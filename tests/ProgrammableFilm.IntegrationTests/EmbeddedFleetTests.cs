using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The workers' list (<c>GET /api/workers</c>, <c>pfilm workers</c>) on SQLite, as the embedded farm reads it.</summary>
public class EmbeddedFleetTests
{
    [Fact]
    public async Task On_sqlite_each_worker_is_busy_idle_or_lost_with_the_attempts_it_holds_however_many_ask_at_once()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-embedded-fleet");
        var options = new CoordinatorOptions();
        await using var services = new ServiceCollection().AddLogging()
            .AddCoordinator(DatabaseOptions.Sqlite(Path.Combine(folder, "pfilm.db")), options, new ShotStorage(folder))
            .BuildServiceProvider();
        await services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
        var spec = JobSpecReader.ReadYaml("""
            project: it-embedded
            shots:
              - {name: a, prompt: a green bird, duration: 1, fps: 24, width: 64, height: 64, keyframeInterval: 12}
            """).Spec!;
        var job = await services.GetRequiredService<JobSubmission>().SubmitAsync(spec, CancellationToken.None);

        var now = DateTime.UtcNow;
        await using (var db = await services.GetRequiredService<IDbContextFactory<FarmDbContext>>().CreateDbContextAsync())
        {
            var tasks = await db.Tasks.Where(t => t.JobId == job.Id).OrderBy(t => t.Key).Select(t => t.Id).ToListAsync();
            Data.Entities.Worker Seen(string id, DateTime at) => new() { Id = id, Pool = "cpu", DeviceSku = "cpu", DeviceCount = 1, Hostname = "studio-1", FirstSeenAt = at, LastSeenAt = at, Slots = 2 };
            db.Workers.AddRange(Seen("w-busy", now), Seen("w-idle", now), Seen("w-lost", now - options.LeaseDuration - TimeSpan.FromMinutes(5)));
            Attempt On(int task, AttemptState state, string? worker) => new() { Id = Guid.NewGuid(), TaskId = tasks[task], Number = 1, State = state, Pool = "cpu", WorkerId = worker, CreatedAt = now };
            db.Attempts.AddRange(
                On(0, AttemptState.Claimed, "w-busy"),
                On(1, AttemptState.Claimed, "w-busy"),
                On(2, AttemptState.Succeeded, "w-idle"),
                On(3, AttemptState.Queued, null),
                On(4, AttemptState.Claimed, "w-lost"));
            await db.SaveChangesAsync();
        }

        var reports = services.GetRequiredService<JobReports>();
        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => reports.WorkersAsync(CancellationToken.None)));
        Assert.All(answers, workers => Assert.Equal(
            [("w-busy", "busy", 2), ("w-idle", "idle", 0), ("w-lost", "lost", 1)],
            workers.Select(w => (w.Id, w.State, w.RunningAttempts))));
    }
}
