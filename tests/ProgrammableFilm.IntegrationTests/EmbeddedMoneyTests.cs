using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ProgrammableFilm.Cli;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Money;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The price book, budgets and spend reports on SQLite (embedded mode), after real renders.</summary>
public class EmbeddedMoneyTests
{
    private const string Project = "it-embedded-money";

    private static JobSpec Spec(string name, int seconds = 1, string budget = "~") => JobSpecReader.ReadYaml($"""
        project: {Project}
        name: {name}
        budget: {budget}
        shots:
          - {"{"}name: s1, prompt: a red car racing left to right at dusk, duration: {seconds}, fps: 8, width: 64, height: 64, keyframeInterval: 1{"}"}
        """).Spec!;

    [Fact]
    public async Task Prices_budgets_and_spend_reports_work_on_an_embedded_farm()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-embedded-money");
        try
        {
            await using var host = await EmbeddedTestFarm.StartAsync(folder, 1);
            var services = host.Services;
            var prices = services.GetRequiredService<Prices>();
            var budgets = services.GetRequiredService<Budgets>();
            var jobs = services.GetRequiredService<JobReports>();
            var submission = services.GetRequiredService<JobSubmission>();
            var contexts = services.GetRequiredService<IDbContextFactory<FarmDbContext>>();

            var (added, errors) = await prices.AddDevicePriceAsync(new NewDevicePrice("cpu", Project, 36m, 20, null), CancellationToken.None);
            Assert.Empty(errors);
            Assert.True(added!.InForce);
            Assert.Equal("sku", Assert.Single((await prices.AddDevicePriceAsync(new NewDevicePrice("tpu-v9", Project, 1m, 20, null), CancellationToken.None)).Errors).Field);
            Assert.Equal(36m, (await prices.RatesAsync(Project, CancellationToken.None)).Devices.Single(d => d.Sku == "cpu").DollarsPerHour);
            Assert.Contains((await prices.ListAsync(null, allProjects: false, CancellationToken.None)).Devices, d => d is { Sku: "cpu", Project: null, DollarsPerHour: 0.04m, InForce: true });

            var first = await submission.SubmitAsync(Spec("first"), CancellationToken.None);
            await WaitAsync(jobs, first.Id, s => s.State == "Succeeded", "the first job to succeed");
            var cost = (await jobs.CostAsync(first.Id, CancellationToken.None))!;
            await using (var db = await contexts.CreateDbContextAsync())
            {
                var rows = await db.Usage.AsNoTracking().Where(u => u.JobId == first.Id).ToListAsync();
                Assert.All(rows, r => Assert.Equal((36m, 400.0, true), (r.DollarsPerHour, r.GramsCo2ePerKwh!.Value, r.EnergyEstimated)));
                Assert.Equal(rows.Sum(r => r.Cost), cost.Cost);
                Assert.Equal(rows.Sum(r => r.DeviceSeconds) * 20 / 3.6e6 * 400, cost.Co2eGrams, tolerance: 1e-9);
            }

            var reports = services.GetRequiredService<SpendReports>();
            foreach (var grouping in Enum.GetValues<SpendGrouping>())
            {
                var report = await reports.ReportAsync(Project, grouping, null, null, CancellationToken.None);
                Assert.Equal(cost.Cost, report.Total.CostUsd);
                Assert.Equal(cost.Cost, report.Lines.Sum(l => l.CostUsd));
                Assert.Equal(cost.Attempts, report.Total.Attempts);
            }

            Assert.Equal(DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), Assert.Single((await reports.ReportAsync(Project, SpendGrouping.Day, null, null, CancellationToken.None)).Lines).Key);
            var byJob = Assert.Single((await reports.ReportAsync(Project, SpendGrouping.Job, null, null, CancellationToken.None)).Lines);
            Assert.Equal(("first", first.Id.ToString()), (byJob.Label, byJob.Key));

            var (status, budgetErrors) = await budgets.SetAsync(Project, cost.Cost, null, CancellationToken.None);
            Assert.Empty(budgetErrors);
            Assert.Equal(("hard", cost.Cost), (status!.State, status.SpentUsd));
            Assert.Equal(["hard", "soft"], status.Alerts.Select(a => a.Level));

            var second = await submission.SubmitAsync(Spec("second"), CancellationToken.None);
            await WaitAsync(jobs, second.Id, s => s.WaitingFor == "budget", "the second job to wait for the budget");
            Assert.Equal(0, await services.GetRequiredService<Dispatcher>().DispatchReadyAsync(CancellationToken.None));
            Assert.Equal(0, (await jobs.StatusAsync(second.Id, CancellationToken.None))!.TasksSucceeded);

            await budgets.SetAsync(Project, cost.Cost * 10, 0.9, CancellationToken.None);
            var done = await WaitAsync(jobs, second.Id, s => s.State == "Succeeded", "the second job to succeed once the budget was raised");
            Assert.Null(done.WaitingFor);
            Assert.Equal("ok", (await budgets.GetAsync(Project, CancellationToken.None)).State);

            // The jobs below have twenty times the first one's frames: the project's budget is moved out of their way,
            // so that the stops they meet are their own.
            await budgets.SetAsync(Project, cost.Cost * 1000, 0.9, CancellationToken.None);

            // A job's own budget on SQLite: its spend kept by the ledger trigger, its stop read through budget_stops. Long
            // enough (160 keyframes) that the bundles its worker claimed before the pause cannot finish it.
            var third = await submission.SubmitAsync(Spec("third", seconds: 20), CancellationToken.None);
            var control = services.GetRequiredService<JobControl>();
            await control.PauseAsync(third.Id, CancellationToken.None);
            Assert.Empty((await budgets.SetJobAsync(third.Id, 0.000001m, null, CancellationToken.None)).Errors);
            await control.ResumeAsync(third.Id, CancellationToken.None);
            var stopped = await WaitAsync(jobs, third.Id, s => s.WaitingFor == "job-budget", "the third job to wait for its own budget");
            Assert.True(stopped.TasksSucceeded < stopped.TasksTotal, $"{stopped.TasksSucceeded}/{stopped.TasksTotal}");
            await WaitUntilNothingClaimedAsync(contexts, third.Id);
            var jobBudget = (await budgets.GetJobAsync(third.Id, CancellationToken.None))!;
            Assert.Equal("hard", jobBudget.State);
            Assert.Equal((await jobs.CostAsync(third.Id, CancellationToken.None))!.Cost, jobBudget.SpentUsd);
            await budgets.SetJobAsync(third.Id, cost.Cost * 1000, null, CancellationToken.None);
            await WaitAsync(jobs, third.Id, s => s.State == "Succeeded", "the third job to succeed once its budget was raised");

            // A budget in the spec, written with the job; SQLite's ledger trigger records the job's crossings (the
            // first bill crosses both of a millionth of a dollar), once each, apart from the project's.
            var fourth = await submission.SubmitAsync(Spec("fourth", seconds: 20, budget: "{limitUsd: 0.000001, softFraction: 0.5}"), CancellationToken.None);
            Assert.Equal((0.000001m, 0.5), ((await budgets.GetJobAsync(fourth.Id, CancellationToken.None))!.LimitUsd, (await budgets.GetJobAsync(fourth.Id, CancellationToken.None))!.SoftFraction));
            await WaitAsync(jobs, fourth.Id, s => s.WaitingFor == "job-budget", "the fourth job to wait for the budget in its spec");
            await using (var db = await contexts.CreateDbContextAsync())
            {
                Assert.Equal(["soft", "hard"], await db.BudgetAlerts.Where(a => a.JobId == fourth.Id).OrderBy(a => a.Id).Select(a => a.Level).ToListAsync());
            }

            Assert.Equal(["hard", "soft"], (await budgets.GetJobAsync(fourth.Id, CancellationToken.None))!.Alerts.Select(a => a.Level));
            Assert.All((await budgets.GetAsync(Project, CancellationToken.None)).Alerts, a => Assert.Null(a.JobId));
            await budgets.SetJobAsync(fourth.Id, cost.Cost * 1000, null, CancellationToken.None);
            await WaitAsync(jobs, fourth.Id, s => s.State == "Succeeded", "the fourth job to succeed once its budget was raised");
            await host.StopAsync();
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// Attempts a worker claimed before a budget stopped their job run to their end past the limit and bill: a job's
    /// spend is compared with its cost once they have (under load a claimed bundle took long enough to bill in between).
    /// </summary>
    private static async Task WaitUntilNothingClaimedAsync(IDbContextFactory<FarmDbContext> contexts, Guid jobId)
    {
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (true)
        {
            await using var db = await contexts.CreateDbContextAsync();
            var claimed = await db.Attempts.CountAsync(a => a.State == Data.Entities.AttemptState.Claimed && db.Tasks.Any(t => t.Id == a.TaskId && t.JobId == jobId));
            if (claimed == 0)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{claimed} attempts still claimed a minute after the job's budget stopped it");
            await Task.Delay(200);
        }
    }

    private static async Task<JobStatus> WaitAsync(JobReports jobs, Guid jobId, Func<JobStatus, bool> done, string what)
    {
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            var status = (await jobs.StatusAsync(jobId, CancellationToken.None))!;
            if (done(status))
            {
                return status;
            }

            Assert.True(status.State is not ("Failed" or "Cancelled") && DateTime.UtcNow < deadline, $"{what}: {status.State}, {status.TasksSucceeded}/{status.TasksTotal}, waiting for {status.WaitingFor}");
            await Task.Delay(200);
        }
    }
}
