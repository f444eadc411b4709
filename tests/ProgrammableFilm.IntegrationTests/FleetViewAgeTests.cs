using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The fleet view is served again for at most <see cref="DashboardReports.FleetMaxAge"/> (embedded database).</summary>
public sealed class FleetViewAgeTests() : SqliteServicesTest("pfilm-fleet-age")
{
    protected override void AddServices(IServiceCollection services) =>
        services.AddLogging().AddSingleton(new CoordinatorOptions()).AddSingleton<JobReports>().AddSingleton<DashboardReports>();

    /// <summary>A delay's timer runs on the kernel's coarse clock and may end a few milliseconds before the view's age has.</summary>
    private static readonly TimeSpan PastTheAge = DashboardReports.FleetMaxAge + TimeSpan.FromMilliseconds(100);

    [Fact]
    public async Task A_worker_that_appears_is_in_the_fleet_view_once_the_last_view_is_older_than_its_maximum_age()
    {
        var reports = Services.GetRequiredService<DashboardReports>();
        // A fresh process's first read compiles its queries and may itself take longer than the age.
        await reports.FleetAsync(CancellationToken.None);
        await Task.Delay(PastTheAge);
        var read = Stopwatch.StartNew();
        var before = await reports.FleetAsync(CancellationToken.None);
        Assert.Empty(before.Workers);

        await using (var db = await Services.GetRequiredService<IDbContextFactory<FarmDbContext>>().CreateDbContextAsync())
        {
            var now = DateTime.UtcNow;
            db.Workers.Add(new Data.Entities.Worker { Id = "new-gpu", Pool = "gpu", DeviceSku = "l4", DeviceCount = 1, Hostname = "node-7", FirstSeenAt = now, LastSeenAt = now, Slots = 2 });
            await db.SaveChangesAsync();
        }

        var again = await reports.FleetAsync(CancellationToken.None);
        if (read.Elapsed < DashboardReports.FleetMaxAge / 2)
        {
            // Well within the age: the same view, not a read of the database.
            Assert.Same(before, again);
        }

        await Task.Delay(PastTheAge);
        var fresh = await reports.FleetAsync(CancellationToken.None);
        var worker = Assert.Single(fresh.Workers);
        Assert.Equal(("new-gpu", "idle", 2), (worker.Id, worker.State, worker.Slots));
        Assert.Equal(1, Assert.Single(fresh.Pools, p => p.Pool == "gpu").LiveWorkers);
    }
}
