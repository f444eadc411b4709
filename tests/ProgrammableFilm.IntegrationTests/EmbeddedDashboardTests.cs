using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ProgrammableFilm.Cli;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The dashboard's queries on SQLite (embedded mode), after a real render: the same figures as the ledger.</summary>
public class EmbeddedDashboardTests
{
    [Fact]
    public async Task The_dashboard_reports_read_an_embedded_farm()
    {
        var spec = JobSpecReader.ReadYaml("""
            project: it-embedded-dash
            shots:
              - name: dusk
                prompt: a red car racing left to right at dusk
                duration: 2
                fps: 12
                width: 128
                height: 128
                engine: procedural
                keyframeInterval: 6
            """).Spec!;
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-embedded-dash");
        try
        {
            await using var host = await EmbeddedTestFarm.StartAsync(folder, 1);
            var jobs = host.Services.GetRequiredService<JobReports>();
            var dashboard = ActivatorUtilities.CreateInstance<DashboardReports>(host.Services);
            var job = await host.Services.GetRequiredService<JobSubmission>().SubmitAsync(spec, CancellationToken.None);
            var deadline = DateTime.UtcNow.AddMinutes(3);
            while ((await jobs.StatusAsync(job.Id, CancellationToken.None))!.State is not ("Succeeded" or "Failed"))
            {
                Assert.True(DateTime.UtcNow < deadline, "the embedded render did not finish");
                await Task.Delay(200);
            }

            var cost = (await jobs.CostAsync(job.Id, CancellationToken.None))!;
            var projects = await dashboard.ProjectsAsync(CancellationToken.None);
            var series = await dashboard.SpendAsync("it-embedded-dash", SpendBucket.Minute, DateTime.UtcNow.AddHours(-1), DateTime.UtcNow.AddMinutes(1), CancellationToken.None);
            var progress = Assert.Single(await dashboard.ProjectJobsAsync("it-embedded-dash", 10, CancellationToken.None));
            var live = await dashboard.LiveJobsAsync(["it-embedded-dash"], DateTime.UtcNow.AddMinutes(-5), CancellationToken.None);
            var fleet = await dashboard.FleetAsync(CancellationToken.None);
            var timeline = (await dashboard.TimelineAsync(cost.Shots[0].ShotId, 100, CancellationToken.None))!;
            await host.StopAsync();

            var project = Assert.Single(projects);
            Assert.Equal(("it-embedded-dash", 1, 0, cost.Cost), (project.Project, project.Jobs, project.ActiveJobs, project.SpentUsd));
            Assert.Equal(cost.Cost, project.BurnUsdPerHour);
            Assert.Equal(cost.Cost, series.TotalUsd);
            Assert.Equal(cost.Attempts, series.Points.Sum(p => p.Attempts));
            Assert.Equal((job.Id, "Succeeded", 1.0, cost.Cost), (progress.Id, progress.State, progress.Progress, progress.CostUsd));
            Assert.Equal(progress, Assert.Single(live));
            Assert.Equal(1, Assert.Single(fleet.Pools).LiveWorkers);
            Assert.Equal([0, 6, 12, 18, 23], timeline.Keyframes);
            Assert.Equal(cost.Attempts, timeline.Attempts.Count);
            Assert.Equal(cost.Shots[0].Cost, timeline.Attempts.Sum(a => a.CostUsd));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
