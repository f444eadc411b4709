using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Money;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>A farm whose budget alerts also reach a recording sink, and whose webhooks may call the test's receiver on 127.0.0.1.</summary>
public sealed class MoneyFarmFixture : FarmFixture
{
    public ConcurrentQueue<BudgetAlert> Alerts { get; } = new();

    protected override IReadOnlyDictionary<string, string> ExtraSettings => new Dictionary<string, string>
    {
        ["Webhooks:AllowLoopback"] = "true",
        ["Webhooks:RetryBackoff"] = "00:00:01",
    };

    protected override void ConfigureServices(IServiceCollection services) =>
        services.AddSingleton<IBudgetAlertSink>(new RecordingSink(Alerts));

    private sealed class RecordingSink(ConcurrentQueue<BudgetAlert> alerts) : IBudgetAlertSink
    {
        public Task OnBudgetCrossedAsync(BudgetAlert alert, CancellationToken cancellationToken)
        {
            alerts.Enqueue(alert);
            return Task.CompletedTask;
        }
    }
}

/// <summary>
/// Issue 13 on the real farm (PostgreSQL, RabbitMQ, two worker processes): the price book bills new attempts and
/// leaves billed ones alone, CO2e and energy per attempt, shot and job, budgets stop dispatch and resume, spend
/// reports in JSON and CSV, and bad money input is a 400 naming the field with nothing written.
/// </summary>
public class MoneyFarmTests(MoneyFarmFixture farm) : IClassFixture<MoneyFarmFixture>
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(3);

    private static string Spec(string project, string name, int frames) => $$"""
        project: {{project}}
        name: {{name}}
        shots:
          - {name: s1, prompt: a red car racing left to right at dusk, duration: {{(frames / 8.0).ToString(CultureInfo.InvariantCulture)}}, fps: 8, width: 64, height: 64, keyframeInterval: 1}
        """;

    private async Task<JobStatus> RenderAsync(string project, string name, int frames)
    {
        var id = await FarmChecks.SubmitAsync(farm.Http, project, Spec(project, name, frames));
        return await FarmChecks.WaitForJobAsync(farm.Http, id, "Succeeded", JobTimeout, () => farm.WorkerOutput);
    }

    private async Task<JsonElement> SendAsync(HttpMethod method, string path, object? body, HttpStatusCode expected)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        using var response = await farm.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{method} {path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task Attempts_are_billed_at_the_prices_in_force_and_a_price_change_never_rewrites_history()
    {
        const string project = "money-prices";
        var book = await SendAsync(HttpMethod.Get, "/api/prices", null, HttpStatusCode.OK);
        Assert.Contains(book.GetProperty("devices").EnumerateArray(), d => d.GetProperty("sku").GetString() == "cpu" && d.GetProperty("dollarsPerHour").GetDecimal() == 0.04m && d.GetProperty("inForce").GetBoolean());
        Assert.Contains(book.GetProperty("carbon").EnumerateArray(), c => c.GetProperty("pool").GetString() == "*" && c.GetProperty("gramsPerKwh").GetDouble() == 400);

        await SendAsync(HttpMethod.Post, "/api/prices/devices", new { sku = "cpu", dollarsPerHour = 7.2m, ratedWatts = 12, project }, HttpStatusCode.Created);
        await SendAsync(HttpMethod.Post, "/api/prices/carbon", new { pool = "cpu", gramsPerKwh = 100, project }, HttpStatusCode.Created);
        var rates = await SendAsync(HttpMethod.Get, $"/api/projects/{project}/prices", null, HttpStatusCode.OK);
        Assert.Equal(7.2m, rates.GetProperty("devices").EnumerateArray().Single(d => d.GetProperty("sku").GetString() == "cpu").GetProperty("dollarsPerHour").GetDecimal());

        var first = await RenderAsync(project, "at-7.20", 6);
        var firstCost = (await farm.Http.GetFromJsonAsync<JobCost>($"/api/jobs/{first.Id}/cost", SpecJson.Options))!;

        await SendAsync(HttpMethod.Post, "/api/prices/devices", new { sku = "cpu", dollarsPerHour = 14.4m, ratedWatts = 24, project }, HttpStatusCode.Created);
        var second = await RenderAsync(project, "at-14.40", 6);
        var secondCost = (await farm.Http.GetFromJsonAsync<JobCost>($"/api/jobs/{second.Id}/cost", SpecJson.Options))!;

        await using var db = farm.CreateDbContext();
        var rows = await db.Usage.AsNoTracking().Where(u => u.Project == project).ToListAsync();
        var firstRows = rows.Where(r => r.JobId == first.Id).ToList();
        var secondRows = rows.Where(r => r.JobId == second.Id).ToList();
        Assert.All(firstRows, r => Assert.Equal((7.2m, 100.0), (r.DollarsPerHour, r.GramsCo2ePerKwh!.Value)));
        Assert.All(secondRows, r => Assert.Equal((14.4m, 100.0), (r.DollarsPerHour, r.GramsCo2ePerKwh!.Value)));

        // This machine has no energy counter: energy is rated watts × device time, marked estimated; CO2e follows.
        Assert.All(rows, r =>
        {
            Assert.True(r.EnergyEstimated);
            Assert.Equal(r.DeviceSeconds * (r.JobId == first.Id ? 12 : 24), r.EnergyJoules, 9);
            Assert.Equal(r.EnergyJoules / 3.6e6 * 100, r.Co2eGrams!.Value, 9);
            Assert.Equal(decimal.Round((decimal)r.DeviceSeconds * r.DollarsPerHour / 3600m, 6, MidpointRounding.AwayFromZero), r.Cost);
            Assert.Equal("cpu", r.Pool);
        });

        // The first job's bill is what it was before the price changed; each report adds its rows exactly.
        var firstAgain = (await farm.Http.GetFromJsonAsync<JobCost>($"/api/jobs/{first.Id}/cost", SpecJson.Options))!;
        Assert.Equal(firstCost.Cost, firstAgain.Cost);
        Assert.Equal(firstRows.Sum(r => r.Cost), firstCost.Cost);
        Assert.Equal(secondRows.Sum(r => r.Cost), secondCost.Cost);
        Assert.Equal(firstRows.Sum(r => r.Co2eGrams!.Value), firstCost.Co2eGrams, tolerance: 1e-9);
        Assert.Equal(firstRows.Sum(r => r.EnergyJoules) / 3.6e6, firstCost.EnergyKilowattHours, tolerance: 1e-12);
        Assert.Equal(firstCost.Co2eGrams, firstCost.Shots.Sum(s => s.Co2eGrams), tolerance: 1e-9);
        Assert.True(firstCost.Co2eGrams > 0);

        var timeline = await farm.Http.GetFromJsonAsync<ShotTimeline>($"/api/shots/{first.Shots[0].Id}/timeline", SpecJson.Options);
        Assert.All(timeline!.Attempts, a => Assert.Equal(firstRows.Single(r => r.AttemptId == a.Id).Co2eGrams, a.Co2eGrams));
        var projects = await farm.Http.GetFromJsonAsync<List<ProjectSummary>>("/api/projects", SpecJson.Options);
        var summary = projects!.Single(p => p.Project == project);
        Assert.Equal(rows.Sum(r => r.Cost), summary.SpentUsd);
        Assert.Equal(rows.Sum(r => r.Co2eGrams!.Value), summary.Co2eGrams, tolerance: 1e-9);
    }

    [Fact]
    public async Task The_per_minute_spend_roll_up_is_the_ledger_summed_per_minute_and_feeds_the_burn_rate_and_the_series()
    {
        const string project = "money-minutes";
        // Two jobs at once: their bills come from concurrent transactions, each upserting the same project's rows.
        var ids = await Task.WhenAll(
            FarmChecks.SubmitAsync(farm.Http, project, Spec(project, "minutes-a", 12)),
            FarmChecks.SubmitAsync(farm.Http, project, Spec(project, "minutes-b", 12)));
        foreach (var id in ids)
        {
            await FarmChecks.WaitForJobAsync(farm.Http, id, "Succeeded", JobTimeout, () => farm.WorkerOutput);
        }

        await using var db = farm.CreateDbContext();
        var rows = await db.Usage.AsNoTracking().Where(u => u.Project == project).ToListAsync();
        var perMinute = rows.GroupBy(r => new DateTime(r.RecordedAt.Ticks - (r.RecordedAt.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Utc))
            .OrderBy(g => g.Key)
            .Select(g => (At: g.Key, Cost: g.Sum(r => r.Cost), Attempts: g.Count()))
            .ToList();
        var rolledUp = await db.Database.SqlQuery<MinuteRow>($"""
            SELECT minute AS "At", cost_micros AS "CostMicros", attempts::int AS "Attempts"
            FROM project_spend_minutes WHERE project = {project} ORDER BY minute
            """).ToListAsync();
        Assert.Equal(perMinute, rolledUp.Select(m => (DateTime.SpecifyKind(m.At, DateTimeKind.Utc), m.CostMicros / 1_000_000m, m.Attempts)));

        var series = (await farm.Http.GetFromJsonAsync<SpendSeries>($"/api/projects/{project}/spend/series?bucket=minute", SpecJson.Options))!;
        Assert.Equal(perMinute, series.Points.Select(p => (p.At, p.CostUsd, p.Attempts)));
        Assert.Equal(rows.Sum(r => r.Cost), series.TotalUsd);
        Assert.Equal(0, series.From.Second + series.From.Millisecond);
        var hourly = (await farm.Http.GetFromJsonAsync<SpendSeries>($"/api/projects/{project}/spend/series?bucket=hour", SpecJson.Options))!;
        Assert.Equal(rows.Sum(r => r.Cost), hourly.Points.Sum(p => p.CostUsd));
        // Every bill is minutes old: the last hour's spend is all of it.
        var summary = (await farm.Http.GetFromJsonAsync<List<ProjectSummary>>("/api/projects", SpecJson.Options))!.Single(p => p.Project == project);
        Assert.Equal((rows.Sum(r => r.Cost), rows.Sum(r => r.Cost)), (summary.SpentUsd, summary.BurnUsdPerHour));
    }

    private sealed class MinuteRow
    {
        public DateTime At { get; init; }

        public long CostMicros { get; init; }

        public int Attempts { get; init; }
    }

    [Fact]
    public async Task A_spend_report_groups_the_ledger_by_day_sku_shot_and_job_in_json_and_csv()
    {
        const string project = "money-spend";
        await SendAsync(HttpMethod.Post, "/api/prices/devices", new { sku = "cpu", dollarsPerHour = 3.6m, ratedWatts = 12, project }, HttpStatusCode.Created);
        var a = await RenderAsync(project, "spend-a", 4);
        var b = await RenderAsync(project, "spend-b", 6);
        await using var db = farm.CreateDbContext();
        var rows = await db.Usage.AsNoTracking().Where(u => u.Project == project).ToListAsync();

        var byJob = await SendAsync(HttpMethod.Get, $"/api/projects/{project}/spend?groupBy=job", null, HttpStatusCode.OK);
        var lines = byJob.GetProperty("lines").EnumerateArray().ToList();
        Assert.Equal([a.Id, b.Id], lines.Select(l => Guid.Parse(l.GetProperty("key").GetString()!)).Order());
        foreach (var line in lines)
        {
            var job = Guid.Parse(line.GetProperty("key").GetString()!);
            Assert.Equal(rows.Where(r => r.JobId == job).Sum(r => r.Cost), line.GetProperty("costUsd").GetDecimal());
            Assert.Equal(rows.Count(r => r.JobId == job), line.GetProperty("attempts").GetInt32());
            Assert.Equal(job == a.Id ? "spend-a" : "spend-b", line.GetProperty("label").GetString());
        }

        Assert.Equal(rows.Sum(r => r.Cost), byJob.GetProperty("total").GetProperty("costUsd").GetDecimal());
        var bySku = await SendAsync(HttpMethod.Get, $"/api/projects/{project}/spend?groupBy=sku", null, HttpStatusCode.OK);
        Assert.Equal("cpu", Assert.Single(bySku.GetProperty("lines").EnumerateArray()).GetProperty("key").GetString());
        var byShot = await SendAsync(HttpMethod.Get, $"/api/projects/{project}/spend?groupBy=shot", null, HttpStatusCode.OK);
        Assert.Contains(byShot.GetProperty("lines").EnumerateArray(), l => l.GetProperty("label").GetString() == "spend-b / s1");
        var today = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var byDay = await SendAsync(HttpMethod.Get, $"/api/projects/{project}/spend?from={today}&to={DateTime.UtcNow.AddDays(1):yyyy-MM-dd}", null, HttpStatusCode.OK);
        var day = Assert.Single(byDay.GetProperty("lines").EnumerateArray());
        Assert.Equal((today, rows.Sum(r => r.Cost)), (day.GetProperty("key").GetString(), day.GetProperty("costUsd").GetDecimal()));
        var empty = await SendAsync(HttpMethod.Get, $"/api/projects/{project}/spend?to=2001-01-01", null, HttpStatusCode.OK);
        Assert.Empty(empty.GetProperty("lines").EnumerateArray());

        using var csvRequest = new HttpRequestMessage(HttpMethod.Get, $"/api/projects/{project}/spend?groupBy=job");
        csvRequest.Headers.Accept.ParseAdd("text/csv");
        using var csvResponse = await farm.Http.SendAsync(csvRequest);
        Assert.Equal("text/csv", csvResponse.Content.Headers.ContentType!.MediaType);
        var csv = (await csvResponse.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("key,label,attempts,device_seconds,cost_usd,energy_kwh,co2e_grams", csv[0]);
        Assert.Equal(4, csv.Length);
        Assert.StartsWith($"total,,{rows.Count},", csv[^1], StringComparison.Ordinal);
        Assert.Equal(rows.Sum(r => r.Cost), decimal.Parse(csv[^1].Split(',')[4], CultureInfo.InvariantCulture));
        Assert.Equal(string.Join("\r\n", csv), string.Join("\r\n", (await farm.Http.GetStringAsync($"/api/projects/{project}/spend?groupBy=job&format=csv")).Split("\r\n", StringSplitOptions.RemoveEmptyEntries)));

        foreach (var (query, field) in new[] { ("groupBy=week", "groupBy"), ("from=yesterday", "from"), ("from=2026-12-02&to=2026-12-01", "from"), ("format=xml", "format") })
        {
            var problem = await SendAsync(HttpMethod.Get, $"/api/projects/{project}/spend?{query}", null, HttpStatusCode.BadRequest);
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"{query}: {problem}");
        }
    }

    [Fact]
    public async Task A_hard_budget_stops_dispatch_running_attempts_finish_and_raising_it_resumes_the_job()
    {
        const string project = "money-budget";
        // $36 per device-hour: a procedural frame of a few tens of milliseconds costs a few tenths of a cent.
        await SendAsync(HttpMethod.Post, "/api/prices/devices", new { sku = "cpu", dollarsPerHour = 36m, ratedWatts = 12, project }, HttpStatusCode.Created);
        var calibration = await RenderAsync(project, "calibration", 24);
        var jobCost = (await farm.Http.GetFromJsonAsync<JobCost>($"/api/jobs/{calibration.Id}/cost", SpecJson.Options))!.Cost;
        // A job with twenty times the calibration's keyframes crosses the soft threshold a twentieth of its keyframes
        // in and the limit a tenth in, far from its end however many attempts its workers hold at the crossing (two
        // bundles of up to 32 one-frame tasks per slot, claimed ahead). Counted in keyframes: the one assembly (an
        // ffmpeg run) can cost more than a hundred procedural keyframes, and a limit counted in whole jobs was first
        // crossed by the stopped job's last task.
        var keyframes = await KeyframeCostAsync(calibration.Id);
        var limit = jobCost + (2 * keyframes);
        var soft = Math.Round((double)((jobCost + keyframes) / limit), 6);
        var set = await SendAsync(HttpMethod.Put, $"/api/projects/{project}/budget", new { limitUsd = limit, softFraction = soft }, HttpStatusCode.OK);
        Assert.Equal(("ok", limit, jobCost), (set.GetProperty("state").GetString(), set.GetProperty("limitUsd").GetDecimal(), set.GetProperty("spentUsd").GetDecimal()));

        var stopped = await FarmChecks.SubmitAsync(farm.Http, project, Spec(project, "stopped", 480));
        var hard = await FarmChecks.PollAsync(farm.CreateDbContext, db => db.BudgetAlerts.AsNoTracking().Where(a => a.Project == project && a.Level == "hard").ToListAsync(), alerts => alerts.Count > 0, JobTimeout, "the hard budget alert", () => farm.WorkerOutput);
        var crossing = Assert.Single(hard);

        // Running attempts finish and are billed; nothing else of the project runs.
        await FarmChecks.PollAsync(
            farm.CreateDbContext,
            db => (from a in db.Attempts join t in db.Tasks on a.TaskId equals t.Id where t.JobId == stopped && a.State == AttemptState.Claimed select a).CountAsync(),
            running => running == 0,
            JobTimeout,
            "the attempts running at the crossing to finish");
        var status = await FarmChecks.GetJobAsync(farm.Http, stopped);
        Assert.Equal("budget", status.WaitingFor);
        Assert.True(status.TasksSucceeded < status.TasksTotal, $"{status.TasksSucceeded}/{status.TasksTotal}: the job ran to the end past its budget");
        var dispatcher = farm.Api.Services.GetRequiredService<Dispatcher>();
        Assert.Equal(0, await dispatcher.DispatchReadyAsync(CancellationToken.None));

        await using (var db = farm.CreateDbContext())
        {
            var crossed = PriceBookCacheTime(crossing.CrossedAt);
            var rows = await db.Usage.AsNoTracking().Where(u => u.JobId == stopped).OrderBy(u => u.Id).ToListAsync();
            var attempts = await (from a in db.Attempts join t in db.Tasks on a.TaskId equals t.Id where t.JobId == stopped select a).AsNoTracking().ToListAsync();
            // The crossing batch carries its time and what came after was running. A batch is billed at the time its
            // transaction began: one that began just before the crossing and committed after it (waiting for the
            // spend row's lock) was running too, so the bills of the second before count as well (a transaction
            // takes milliseconds; the same tolerance as for the claims below).
            var after = rows.Where(r => PriceBookCacheTime(r.RecordedAt) >= crossed.AddSeconds(-1)).ToList();
            // Every attempt billed from the crossing on was already claimed when the crossing committed (that
            // transaction takes milliseconds; a second is the tolerance): no attempt started after it.
            Assert.All(after, r => Assert.True(PriceBookCacheTime(attempts.Single(a => a.Id == r.AttemptId).ClaimedAt!.Value) <= crossed.AddSeconds(1), $"attempt {r.AttemptId} was claimed after the budget was crossed at {crossed:O}"));
            Assert.DoesNotContain(attempts, a => a.ClaimedAt is { } claimed && PriceBookCacheTime(claimed) > crossed.AddSeconds(1));
            var spent = (await db.ProjectSpend.AsNoTracking().SingleAsync(s => s.Project == project)).CostMicros / 1_000_000m;
            Assert.Equal(jobCost + rows.Sum(r => r.Cost), spent);
            Assert.True(crossing.SpentMicros >= crossing.LimitMicros && crossing.LimitMicros == (long)(limit * 1_000_000m), $"{crossing.SpentMicros} of {crossing.LimitMicros}");
            Assert.True(spent - limit <= after.Sum(r => r.Cost), $"overshoot {spent - limit} exceeds the cost of the attempts running at the crossing ({after.Sum(r => r.Cost)})");
            Assert.True(spent >= limit);
        }

        var budget = await SendAsync(HttpMethod.Get, $"/api/projects/{project}/budget", null, HttpStatusCode.OK);
        Assert.Equal("hard", budget.GetProperty("state").GetString());
        Assert.Equal(["hard", "soft"], budget.GetProperty("alerts").EnumerateArray().Select(a => a.GetProperty("level").GetString()));

        // Raising the budget resumes the job; no new crossing is recorded, and each crossing reached the sinks once.
        await SendAsync(HttpMethod.Put, $"/api/projects/{project}/budget", new { limitUsd = limit * 100 }, HttpStatusCode.OK);
        var finished = await FarmChecks.WaitForJobAsync(farm.Http, stopped, "Succeeded", JobTimeout, () => farm.WorkerOutput);
        Assert.Null(finished.WaitingFor);
        await using (var db = farm.CreateDbContext())
        {
            Assert.Equal(2, await db.BudgetAlerts.CountAsync(a => a.Project == project));
        }

        await FarmChecks.PollAsync(farm.CreateDbContext, db => db.BudgetAlerts.CountAsync(a => a.Project == project && a.RelayedAt == null), pending => pending == 0, TimeSpan.FromSeconds(30), "the alerts to be relayed");
        Assert.Equal(["soft", "hard"], farm.Alerts.Where(a => a.Project == project).DistinctBy(a => a.Id).Select(a => a.Level));
        Assert.Equal(limit, farm.Alerts.First(a => a.Project == project && a.Level == "hard").LimitUsd);
    }

    [Fact]
    public async Task Lowering_a_budget_below_the_spend_records_both_crossings_once()
    {
        const string project = "money-lowered";
        // Priced so that the render costs many micro-dollars: at the default CPU price two frames can cost one, and
        // half of it is no budget.
        await SendAsync(HttpMethod.Post, "/api/prices/devices", new { sku = "cpu", dollarsPerHour = 36m, ratedWatts = 12, project }, HttpStatusCode.Created);
        await RenderAsync(project, "lowered", 2);
        var spent = (await SendAsync(HttpMethod.Get, $"/api/projects/{project}/budget", null, HttpStatusCode.OK)).GetProperty("spentUsd").GetDecimal();
        Assert.True(spent > 0);

        var hard = await SendAsync(HttpMethod.Put, $"/api/projects/{project}/budget", new { limitUsd = spent }, HttpStatusCode.OK);
        Assert.Equal(("hard", 0.8), (hard.GetProperty("state").GetString(), hard.GetProperty("softFraction").GetDouble()));
        await SendAsync(HttpMethod.Put, $"/api/projects/{project}/budget", new { limitUsd = decimal.Round(spent / 2, 6) }, HttpStatusCode.OK);
        var soft = await SendAsync(HttpMethod.Put, $"/api/projects/{project}/budget", new { limitUsd = decimal.Round(spent * 1.5m, 6), softFraction = 0.5 }, HttpStatusCode.OK);
        Assert.Equal("soft", soft.GetProperty("state").GetString());
        await using var db = farm.CreateDbContext();
        Assert.Equal(["soft", "hard"], await db.BudgetAlerts.Where(a => a.Project == project).OrderBy(a => a.Id).Select(a => a.Level).ToListAsync());
    }

    [Fact]
    public async Task A_jobs_own_hard_budget_stops_its_dispatch_running_attempts_finish_and_raising_it_resumes_the_job()
    {
        const string project = "money-job-budget";
        await SendAsync(HttpMethod.Post, "/api/prices/devices", new { sku = "cpu", dollarsPerHour = 36m, ratedWatts = 12, project }, HttpStatusCode.Created);
        var calibration = await RenderAsync(project, "calibration", 24);
        var keyframes = await KeyframeCostAsync(calibration.Id);

        // Paused while its budget is set. Bundles its workers claimed before the pause still run and bill, so the
        // limit is what it has spent once they are done plus twice the calibration's keyframes (counted in keyframes:
        // its one assembly may cost more than all of them), and at least 1.3 times that spend, so that the budget
        // starts below its soft threshold (80 %) however many keyframes ran before the pause took: reached early in
        // its 960 keyframes, far from its end.
        var stopped = await FarmChecks.SubmitAsync(farm.Http, project, Spec(project, "job-stopped", 960));
        await SendAsync(HttpMethod.Post, $"/api/jobs/{stopped}/pause", null, HttpStatusCode.OK);
        await FarmChecks.PollAsync(
            farm.CreateDbContext,
            db => (from a in db.Attempts join t in db.Tasks on a.TaskId equals t.Id where t.JobId == stopped && (a.State == AttemptState.Claimed || a.State == AttemptState.Queued) select a).CountAsync(),
            live => live == 0,
            JobTimeout,
            "the attempts claimed before the pause to finish");
        decimal spentBefore;
        await using (var db = farm.CreateDbContext())
        {
            spentBefore = (await db.JobSpend.AsNoTracking().Where(s => s.JobId == stopped).Select(s => (long?)s.CostMicros).SingleOrDefaultAsync() ?? 0) / 1_000_000m;
        }

        var limit = Math.Max(spentBefore + (2 * keyframes), Math.Round(spentBefore * 1.3m, 6));

        // Two first settings at once both succeed.
        var set = (await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => SendAsync(HttpMethod.Put, $"/api/jobs/{stopped}/budget", new { limitUsd = limit }, HttpStatusCode.OK))))[0];
        Assert.Equal(("ok", limit, 0.8, project), (set.GetProperty("state").GetString(), set.GetProperty("limitUsd").GetDecimal(), set.GetProperty("softFraction").GetDouble(), set.GetProperty("project").GetString()));
        await SendAsync(HttpMethod.Post, $"/api/jobs/{stopped}/resume", null, HttpStatusCode.OK);

        await FarmChecks.PollAsync(farm.CreateDbContext, db => db.JobSpend.AsNoTracking().Where(s => s.JobId == stopped).Select(s => s.CostMicros).SingleOrDefaultAsync(), spent => spent >= (long)(limit * 1_000_000m), JobTimeout, "the job to reach its budget", () => farm.WorkerOutput);
        await FarmChecks.PollAsync(
            farm.CreateDbContext,
            db => (from a in db.Attempts join t in db.Tasks on a.TaskId equals t.Id where t.JobId == stopped && (a.State == AttemptState.Claimed || a.State == AttemptState.Queued) select a).CountAsync(),
            running => running == 0,
            JobTimeout,
            "the attempts running at the crossing to finish");
        var status = await FarmChecks.GetJobAsync(farm.Http, stopped);
        Assert.Equal("job-budget", status.WaitingFor);
        Assert.True(status.TasksSucceeded < status.TasksTotal, $"{status.TasksSucceeded}/{status.TasksTotal}: the job ran to the end past its budget");
        Assert.Equal(0, await farm.Api.Services.GetRequiredService<Dispatcher>().DispatchReadyAsync(CancellationToken.None));

        // The project's other jobs are not the stopped job's budget's business.
        var other = await RenderAsync(project, "job-other", 4);
        Assert.Null(other.WaitingFor);

        await using (var db = farm.CreateDbContext())
        {
            var rows = await db.Usage.AsNoTracking().Where(u => u.JobId == stopped).OrderBy(u => u.Id).ToListAsync();
            var attempts = await (from a in db.Attempts join t in db.Tasks on a.TaskId equals t.Id where t.JobId == stopped select a).AsNoTracking().ToListAsync();
            // The crossing is the bill that took the job's spend to its limit; the rows billed from then on were
            // attempts already claimed (a second of tolerance for the crossing's own transaction).
            var cumulative = 0m;
            var crossing = rows.First(r => (cumulative += r.Cost) >= limit);
            var crossed = PriceBookCacheTime(crossing.RecordedAt);
            var after = rows.Where(r => PriceBookCacheTime(r.RecordedAt) >= crossed).ToList();
            Assert.DoesNotContain(attempts, a => a.ClaimedAt is { } claimed && PriceBookCacheTime(claimed) > crossed.AddSeconds(1));
            var spent = (await db.JobSpend.AsNoTracking().SingleAsync(s => s.JobId == stopped)).CostMicros / 1_000_000m;
            Assert.Equal(rows.Sum(r => r.Cost), spent);
            Assert.True(spent >= limit);
            Assert.True(spent - limit <= after.Sum(r => r.Cost), $"overshoot {spent - limit} exceeds the cost of the attempts running at the crossing ({after.Sum(r => r.Cost)})");
        }

        var budget = await SendAsync(HttpMethod.Get, $"/api/jobs/{stopped}/budget", null, HttpStatusCode.OK);
        Assert.Equal("hard", budget.GetProperty("state").GetString());

        await SendAsync(HttpMethod.Put, $"/api/jobs/{stopped}/budget", new { limitUsd = limit * 100 }, HttpStatusCode.OK);
        var finished = await FarmChecks.WaitForJobAsync(farm.Http, stopped, "Succeeded", JobTimeout, () => farm.WorkerOutput);
        Assert.Null(finished.WaitingFor);
        Assert.Equal("ok", (await SendAsync(HttpMethod.Get, $"/api/jobs/{stopped}/budget", null, HttpStatusCode.OK)).GetProperty("state").GetString());
    }

    [Fact]
    public async Task A_budget_in_the_spec_is_the_jobs_own_and_each_crossing_of_it_is_one_alert_and_one_webhook_with_the_job_id()
    {
        const string project = "money-job-alerts";
        await using var receiver = new WebhookReceiver();
        await SendAsync(HttpMethod.Post, $"/api/projects/{project}/webhooks", new { url = receiver.Url("budget"), events = new[] { "budget.soft", "budget.hard" } }, HttpStatusCode.Created);
        await SendAsync(HttpMethod.Post, "/api/prices/devices", new { sku = "cpu", dollarsPerHour = 36m, ratedWatts = 12, project }, HttpStatusCode.Created);
        var calibration = await RenderAsync(project, "calibration", 24);
        var keyframes = await KeyframeCostAsync(calibration.Id);

        // Its soft threshold is the calibration's keyframes, its limit twice that: both crossed early in its 960
        // keyframes, far from its end however many bundles its workers claimed ahead (see the test above).
        var limit = decimal.Round(2 * keyframes, 6);
        var spec = Spec(project, "job-alerted", 960).Replace("shots:", $"budget: {{limitUsd: {limit.ToString(CultureInfo.InvariantCulture)}, softFraction: 0.5}}\nshots:", StringComparison.Ordinal);
        var job = await FarmChecks.SubmitAsync(farm.Http, project, spec);
        var budget = await SendAsync(HttpMethod.Get, $"/api/jobs/{job}/budget", null, HttpStatusCode.OK);
        Assert.Equal((limit, 0.5), (budget.GetProperty("limitUsd").GetDecimal(), budget.GetProperty("softFraction").GetDouble()));

        await FarmChecks.PollAsync(farm.CreateDbContext, db => db.BudgetAlerts.CountAsync(a => a.JobId == job && a.Level == "hard"), count => count > 0, JobTimeout, "the job's hard budget alert", () => farm.WorkerOutput);
        await WaitForRunningAttemptsAsync(job);
        var status = await FarmChecks.GetJobAsync(farm.Http, job);
        Assert.Equal("job-budget", status.WaitingFor);
        Assert.True(status.TasksSucceeded < status.TasksTotal, $"{status.TasksSucceeded}/{status.TasksTotal}: the job ran to the end past its budget");

        List<BudgetAlertRow> alerts;
        long spent;
        await using (var db = farm.CreateDbContext())
        {
            alerts = await db.BudgetAlerts.AsNoTracking().Where(a => a.Project == project).OrderBy(a => a.Id).ToListAsync();
            spent = (await db.JobSpend.AsNoTracking().SingleAsync(s => s.JobId == job)).CostMicros;
        }

        var limitMicros = (long)(limit * 1_000_000m);
        Assert.Equal(new (string, Guid?)[] { ("soft", job), ("hard", job) }, alerts.Select(a => (a.Level, a.JobId)));
        Assert.All(alerts, a => Assert.Equal(limitMicros, a.LimitMicros));
        Assert.True(alerts[0].SpentMicros >= limitMicros / 2 && alerts[1].SpentMicros >= limitMicros, string.Join(", ", alerts.Select(a => a.SpentMicros)));
        Assert.True(spent >= limitMicros);

        // Relayed once each, to the project's webhook, with the job's id.
        var bodies = (await receiver.WaitForAsync("budget", 2, TimeSpan.FromSeconds(60))).Select(r => JsonDocument.Parse(r.Body).RootElement.Clone()).ToList();
        Assert.Equal(["budget.soft", "budget.hard"], bodies.OrderBy(b => b.GetProperty("data").GetProperty("alertId").GetInt64()).Select(b => b.GetProperty("event").GetString()));
        Assert.All(bodies, b => Assert.Equal(job, b.GetProperty("data").GetProperty("jobId").GetGuid()));
        Assert.Equal(alerts.Select(a => a.Id).Order(), bodies.Select(b => b.GetProperty("data").GetProperty("alertId").GetInt64()).Order());
        Assert.Equal(limit, bodies[0].GetProperty("data").GetProperty("limitUsd").GetDecimal());

        // The job's crossings are on its budget, not the project's.
        Assert.Equal(["hard", "soft"], (await SendAsync(HttpMethod.Get, $"/api/jobs/{job}/budget", null, HttpStatusCode.OK)).GetProperty("alerts").EnumerateArray().Select(a => a.GetProperty("level").GetString()));
        Assert.Empty((await SendAsync(HttpMethod.Get, $"/api/projects/{project}/budget", null, HttpStatusCode.OK)).GetProperty("alerts").EnumerateArray());

        // Raised above the spend, its limit can be crossed again: one new alert and one new webhook. Its soft threshold
        // is below the spend already, which is no crossing (it was past it).
        var raised = decimal.Round((spent / 1_000_000m) + (2 * keyframes), 6);
        var set = await SendAsync(HttpMethod.Put, $"/api/jobs/{job}/budget", new { limitUsd = raised, softFraction = 0.5 }, HttpStatusCode.OK);
        Assert.Equal("soft", set.GetProperty("state").GetString());
        await FarmChecks.PollAsync(farm.CreateDbContext, db => db.BudgetAlerts.CountAsync(a => a.JobId == job && a.Level == "hard"), count => count > 1, JobTimeout, "the job's second hard budget alert", () => farm.WorkerOutput);
        await SendAsync(HttpMethod.Post, $"/api/jobs/{job}/cancel", null, HttpStatusCode.OK);
        var again = (await receiver.WaitForAsync("budget", 3, TimeSpan.FromSeconds(60))).Select(r => JsonDocument.Parse(r.Body).RootElement).MaxBy(b => b.GetProperty("data").GetProperty("alertId").GetInt64());
        Assert.Equal(("budget.hard", job, raised), (again.GetProperty("event").GetString(), again.GetProperty("data").GetProperty("jobId").GetGuid(), again.GetProperty("data").GetProperty("limitUsd").GetDecimal()));
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(3, receiver.At("budget").Count);
        await using (var db = farm.CreateDbContext())
        {
            Assert.Equal(["soft", "hard", "hard"], await db.BudgetAlerts.Where(a => a.Project == project).OrderBy(a => a.Id).Select(a => a.Level).ToListAsync());
        }
    }

    [Theory]
    [InlineData("{limitUsd: -5}", "budget.limitUsd")]
    [InlineData("{limitUsd: 0}", "budget.limitUsd")]
    [InlineData("{limitUsd: .nan}", "budget.limitUsd")]
    [InlineData("{limitUsd: 1e12}", "budget.limitUsd")]
    [InlineData("{limitUsd: 10.0000001}", "budget.limitUsd")]
    [InlineData("{softFraction: 0.5}", "budget.limitUsd")]
    [InlineData("{limitUsd: 10, softFraction: 0}", "budget.softFraction")]
    [InlineData("{limitUsd: 10, softFraction: 1.5}", "budget.softFraction")]
    [InlineData("{limitUsd: 10, hard: true}", "budget.hard")]
    [InlineData("12.50", "budget")]
    public async Task A_bad_budget_in_a_spec_is_a_400_problem_naming_the_field_and_no_job_is_written(string budget, string field)
    {
        const string project = "money-spec-bad";
        var (jobs, budgets) = await JobCountsAsync(project);
        using var content = new StringContent(Spec(project, "bad-budget", 2).Replace("shots:", $"budget: {budget}\nshots:", StringComparison.Ordinal), Encoding.UTF8, "application/yaml");
        using var response = await farm.Http.PostAsync($"/api/projects/{project}/jobs", content);
        var text = await response.Content.ReadAsStringAsync();

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{budget}: {(int)response.StatusCode} {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(JsonDocument.Parse(text).RootElement.GetProperty("errors").TryGetProperty(field, out _), $"{budget}: {text}");
        Assert.Equal((jobs, budgets), await JobCountsAsync(project));
    }

    [Fact]
    public async Task A_bad_job_budget_is_a_400_problem_naming_the_field_and_writes_nothing()
    {
        var job = await RenderAsync("money-job-bad", "bad", 2);
        (string Body, string Field)[] bad =
        [
            ("""{"limitUsd": -5}""", "limitUsd"),
            ("""{"limitUsd": 0}""", "limitUsd"),
            ("""{"limitUsd": "NaN"}""", "limitUsd"),
            ("""{"limitUsd": NaN}""", "body"),
            ("""{"limitUsd": 1e12}""", "limitUsd"),
            ("""{"limitUsd": 10.0000001}""", "limitUsd"),
            ("""{"limitUsd": 10, "softFraction": 1.5}""", "softFraction"),
            ("""{"limitUsd": 10, "hard": true}""", "hard"),
        ];
        foreach (var (body, field) in bad)
        {
            using var request = new HttpRequestMessage(HttpMethod.Put, $"/api/jobs/{job.Id}/budget") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var response = await farm.Http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{body}: {(int)response.StatusCode} {text}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.True(JsonDocument.Parse(text).RootElement.GetProperty("errors").TryGetProperty(field, out _), $"{body}: {text}");
        }

        await using var db = farm.CreateDbContext();
        Assert.False(await db.JobBudgets.AnyAsync(b => b.JobId == job.Id));
        await SendAsync(HttpMethod.Put, $"/api/jobs/{Guid.NewGuid()}/budget", new { limitUsd = 10 }, HttpStatusCode.NotFound);
        Assert.Null((await SendAsync(HttpMethod.Get, $"/api/jobs/{job.Id}/budget", null, HttpStatusCode.OK)).GetProperty("limitUsd").GetString());
    }

    public static TheoryData<string, string, string> BadMoney => new()
    {
        { "PUT /api/projects/money-bad/budget", """{"limitUsd": -5}""", "limitUsd" },
        { "PUT /api/projects/money-bad/budget", """{"limitUsd": 0}""", "limitUsd" },
        { "PUT /api/projects/money-bad/budget", """{"limitUsd": "NaN"}""", "limitUsd" },
        { "PUT /api/projects/money-bad/budget", """{"limitUsd": NaN}""", "body" },
        { "PUT /api/projects/money-bad/budget", """{"limitUsd": 1e12}""", "limitUsd" },
        { "PUT /api/projects/money-bad/budget", """{"limitUsd": 1e400}""", "limitUsd" },
        { "PUT /api/projects/money-bad/budget", """{"limitUsd": 10.0000001}""", "limitUsd" },
        { "PUT /api/projects/money-bad/budget", """{"softFraction": 0.5}""", "limitUsd" },
        { "PUT /api/projects/money-bad/budget", """{"limitUsd": 10, "softFraction": 0}""", "softFraction" },
        { "PUT /api/projects/money-bad/budget", """{"limitUsd": 10, "softFraction": 1.5}""", "softFraction" },
        { "PUT /api/projects/money-bad/budget", """{"limitUsd": 10, "softFraction": "0.8"}""", "softFraction" },
        { "PUT /api/projects/money-bad/budget", """{"limitUsd": 10, "hard": true}""", "hard" },
        { "PUT /api/projects/money-bad/budget", """[10]""", "body" },
        { "POST /api/prices/devices", """{"sku": "cpu", "dollarsPerHour": -0.01, "ratedWatts": 12}""", "dollarsPerHour" },
        { "POST /api/prices/devices", """{"sku": "cpu", "dollarsPerHour": 250000, "ratedWatts": 12}""", "dollarsPerHour" },
        { "POST /api/prices/devices", """{"sku": "cpu", "dollarsPerHour": "NaN", "ratedWatts": 12}""", "dollarsPerHour" },
        { "POST /api/prices/devices", """{"sku": "cpu", "dollarsPerHour": 1, "ratedWatts": 7e6}""", "ratedWatts" },
        { "POST /api/prices/devices", """{"sku": "cpu", "dollarsPerHour": 1, "ratedWatts": -3}""", "ratedWatts" },
        { "POST /api/prices/devices", """{"sku": "H100 SXM!", "dollarsPerHour": 1, "ratedWatts": 700}""", "sku" },
        { "POST /api/prices/devices", """{"sku": "tpu-v9", "dollarsPerHour": 1, "ratedWatts": 300, "project": "money-bad"}""", "sku" },
        { "POST /api/prices/devices", """{"sku": "cpu", "dollarsPerHour": 1, "ratedWatts": 12, "effectiveFrom": "2020-01-01T00:00:00Z"}""", "effectiveFrom" },
        { "POST /api/prices/devices", """{"sku": "cpu", "dollarsPerHour": 1, "ratedWatts": 12, "effectiveFrom": "next tuesday"}""", "effectiveFrom" },
        { "POST /api/prices/devices", """{"sku": "cpu", "price": 1, "ratedWatts": 12}""", "price" },
        { "POST /api/prices/carbon", """{"pool": "cpu", "gramsPerKwh": -1}""", "gramsPerKwh" },
        { "POST /api/prices/carbon", """{"pool": "cpu", "gramsPerKwh": 1e9}""", "gramsPerKwh" },
        { "POST /api/prices/carbon", """{"pool": "", "gramsPerKwh": 300}""", "pool" },
        { "POST /api/prices/carbon", """{"pool": "cpu"}""", "gramsPerKwh" },
    };

    [Theory]
    [MemberData(nameof(BadMoney))]
    public async Task Bad_money_input_is_a_400_problem_naming_the_field_and_writes_nothing(string endpoint, string body, string field)
    {
        var (budgets, prices, carbon) = await CountsAsync();
        var (method, path) = (endpoint.Split(' ')[0], endpoint.Split(' ')[1]);
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await farm.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();

        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), text);
        Assert.Equal((budgets, prices, carbon), await CountsAsync());
    }

    /// <summary>What a job's keyframe tasks were billed (every attempt).</summary>
    private async Task<decimal> KeyframeCostAsync(Guid jobId)
    {
        await using var db = farm.CreateDbContext();
        return await db.Usage.AsNoTracking().Where(u => u.JobId == jobId).Join(db.Tasks, u => u.TaskId, t => t.Id, (u, t) => new { u.Cost, t.Kind })
            .Where(r => r.Kind == "keyframe").SumAsync(r => r.Cost);
    }

    private async Task<(int Jobs, int JobBudgets)> JobCountsAsync(string project)
    {
        await using var db = farm.CreateDbContext();
        return (await db.Jobs.CountAsync(j => j.Project == project), await db.JobBudgets.CountAsync());
    }

    /// <summary>Waits until the job has no attempt claimed or queued: those running at a crossing have finished.</summary>
    private Task WaitForRunningAttemptsAsync(Guid jobId) => FarmChecks.PollAsync(
        farm.CreateDbContext,
        db => (from a in db.Attempts join t in db.Tasks on a.TaskId equals t.Id where t.JobId == jobId && (a.State == AttemptState.Claimed || a.State == AttemptState.Queued) select a).CountAsync(),
        running => running == 0,
        JobTimeout,
        "the attempts running at the crossing to finish");

    private async Task<(int, int, int)> CountsAsync()
    {
        await using var db = farm.CreateDbContext();
        return (await db.ProjectBudgets.CountAsync(), await db.DevicePrices.CountAsync(), await db.CarbonIntensities.CountAsync());
    }

    /// <summary>Npgsql reads timestamptz back as UTC; compared at microsecond precision (what PostgreSQL keeps).</summary>
    private static DateTime PriceBookCacheTime(DateTime value) => new(value.Ticks - value.Ticks % 10, DateTimeKind.Utc);
}
