using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using ProgrammableFilm.Coordinator;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The dashboard in Chromium against a real farm: real renders, live pushes, charts, the budget banner.</summary>
public class DashboardTests(DashboardFixture farm) : IClassFixture<DashboardFixture>
{
    /// <summary>240 frames in 40 tasks over two workers: a few seconds of rendering, long enough to watch it move.</summary>
    private const string Spec = """
        name: dusk chase
        shots:
          - name: chase
            prompt: a red car racing left to right at dusk
            duration: 10
            fps: 24
            width: 320
            height: 192
            engine: procedural
            keyframeInterval: 12
        """;

    private readonly ConcurrentQueue<string> _problems = new();

    [Fact]
    public async Task The_job_page_moves_while_the_job_renders_and_then_shows_its_shots_cost_and_attempts()
    {
        var page = await farm.NewPageAsync(_problems);
        // The job page opens first, on an empty project list, so every change after that must arrive by push.
        await page.GotoAsync("/#/fleet");
        await page.WaitForSelectorAsync("body[data-loaded='/fleet']");
        var jobId = await SubmitAsync("dash-live");
        await page.GotoAsync($"/#/jobs/{jobId}");
        await page.WaitForSelectorAsync($"body[data-loaded='/jobs/{jobId}']");
        await page.EvaluateAsync("""
            () => {
              window.seen = [];
              const record = () => { const bar = document.querySelector('#job-progress .bar'); if (bar) window.seen.push(Number(bar.dataset.progress)); };
              new MutationObserver(record).observe(document.getElementById('job-stats'), { childList: true, subtree: true });
              record();
            }
            """);
        await page.WaitForSelectorAsync("#job-state:text('Succeeded')", new PageWaitForSelectorOptions { Timeout = 120_000 });
        await page.WaitForSelectorAsync($"section.shot video[src^='/api/shots/{await ShotIdAsync(jobId)}/video?access_token=']", new PageWaitForSelectorOptions { Timeout = 10_000 });

        var seen = await page.EvaluateAsync<double[]>("() => window.seen");
        Assert.Contains(seen, p => p is > 0 and < 1);
        Assert.Equal(1, seen[^1]);
        Assert.True(seen.SequenceEqual(seen.Order()), $"progress went backwards: {string.Join(", ", seen)}");
        // Pushed, not polled: once nothing changes, the page asks for nothing.
        var quiet = new ConcurrentQueue<string>();
        await Task.Delay(1500);
        page.Request += (_, request) =>
        {
            if (request.Url.Contains("/api/", StringComparison.Ordinal) && !request.Url.EndsWith("/video", StringComparison.Ordinal))
            {
                quiet.Enqueue(request.Url);
            }
        };
        await Task.Delay(3000);
        Assert.True(quiet.IsEmpty, $"requests while nothing changed:\n{string.Join('\n', quiet)}");

        var cost = await farm.Http.GetFromJsonAsync<JobCost>($"/api/jobs/{jobId}/cost", SpecJson.Options);
        Assert.True(cost!.Cost > 0);
        await AssertShowsAsync(page.Locator("#job-cost"), cost.Cost);
        await AssertShowsAsync(page.Locator(".shot-cost"), cost.Shots[0].Cost);

        // The quote it was given at submission, against what it cost (the ledger's sum).
        var quote = await farm.Http.GetFromJsonAsync<Coordinator.Quotes.JobQuoteView>($"/api/jobs/{jobId}/quote", SpecJson.Options);
        await AssertShowsAsync(page.Locator("#quote-cost"), quote!.CostUsd);
        await AssertShowsAsync(page.Locator("#quote-actual"), cost.Cost);
        await Assertions.Expect(page.Locator(".timeline")).ToHaveAttributeAsync("data-attempts", cost.Attempts.ToString(CultureInfo.InvariantCulture));
        var thumbnails = page.Locator(".thumbs img");
        Assert.Equal(await KeyframeCountAsync(jobId), await thumbnails.CountAsync());
        await page.WaitForFunctionAsync("() => [...document.querySelectorAll('.thumbs img')].every(i => i.complete && i.naturalWidth === 320)");
        await page.WaitForFunctionAsync("() => document.querySelector('video').readyState >= 1 && document.querySelector('video').duration > 9.9");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(farm.ScreenshotFolder, "dashboard-job.png"), FullPage = true });

        await page.GotoAsync("/#/projects/dash-live");
        await page.WaitForSelectorAsync("body[data-loaded='/projects/dash-live']");
        await Assertions.Expect(page.Locator("#quote-accuracy tr[data-kind='procedural 320x192'] td.num").First).ToHaveTextAsync("1");

        await page.GotoAsync("/#/");
        await page.WaitForSelectorAsync("body[data-loaded='/']");
        await AssertShowsAsync(page.Locator("tr[data-project='dash-live'] .spent"), await ProjectSpendAsync("dash-live"));
        var grams = (await farm.Http.GetFromJsonAsync<List<ProjectSummary>>("/api/projects", SpecJson.Options))!.Single(p => p.Project == "dash-live").Co2eGrams;
        Assert.True(grams > 0);
        await Assertions.Expect(page.Locator("tr[data-project='dash-live'] .co2e")).ToHaveTextAsync($"{grams.ToString("F2", CultureInfo.InvariantCulture)} g CO2e");
        await page.GotoAsync("/#/fleet");
        await page.WaitForSelectorAsync("body[data-loaded='/fleet']");
        await Assertions.Expect(page.Locator("#workers tr[data-worker]")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("tr[data-pool='cpu']")).ToBeVisibleAsync();
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(farm.ScreenshotFolder, "dashboard-fleet.png"), FullPage = true });
        Assert.Empty(_problems);
    }

    [Fact]
    public async Task The_spend_chart_has_a_point_per_billed_minute_and_updates_when_a_render_bills_more()
    {
        var first = await SubmitAsync("dash-chart");
        await WaitForJobAsync(first);
        var page = await farm.NewPageAsync(_problems);
        await page.GotoAsync("/#/projects/dash-chart");
        await page.WaitForSelectorAsync("body[data-loaded='/projects/dash-chart']");
        var series = await farm.Http.GetFromJsonAsync<SpendSeries>("/api/projects/dash-chart/spend/series?bucket=minute", SpecJson.Options);
        Assert.NotEmpty(series!.Points);
        await Assertions.Expect(page.Locator("#spend-chart")).ToHaveAttributeAsync("data-points", series.Points.Count.ToString(CultureInfo.InvariantCulture));
        await Assertions.Expect(page.Locator("#spend-chart canvas")).ToHaveCountAsync(1);
        await AssertShowsAsync(page.Locator("#spent"), series.TotalUsd);

        // A second render: the chart and the total follow by push.
        var second = await SubmitAsync("dash-chart");
        await Assertions.Expect(page.Locator($"#jobs tr[data-job='{second}']")).ToBeVisibleAsync();
        await WaitForJobAsync(second);
        var total = await ProjectSpendAsync("dash-chart");
        await AssertShowsAsync(page.Locator("#spent"), total);
        await AssertShowsAsync(page.Locator($"#jobs tr[data-job='{second}'] .cost"), (await farm.Http.GetFromJsonAsync<JobCost>($"/api/jobs/{second}/cost", SpecJson.Options))!.Cost);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(farm.ScreenshotFolder, "dashboard-project.png"), FullPage = true });
        Assert.Empty(_problems);
    }

    [Fact]
    public async Task A_budget_banner_appears_when_the_soft_limit_is_crossed()
    {
        var first = await SubmitAsync("dash-budget");
        await WaitForJobAsync(first);
        var spent = await ProjectSpendAsync("dash-budget");
        // The soft threshold sits just above what the first render spent and the limit far above it: the second render
        // crosses the threshold and never the limit, whatever its device time (a cold first render costs twice a warm one).
        var limit = Math.Round(spent * 10, 6);
        var softFraction = (double)((spent + 0.000001m) / limit);
        using var put = await farm.Http.PutAsJsonAsync("/api/projects/dash-budget/budget", new { limitUsd = limit, softFraction });
        Assert.True(put.StatusCode == HttpStatusCode.OK, $"PUT /api/projects/dash-budget/budget answered {(int)put.StatusCode}: {await put.Content.ReadAsStringAsync()}");

        var page = await farm.NewPageAsync(_problems);
        await page.GotoAsync("/#/projects/dash-budget");
        await page.WaitForSelectorAsync("body[data-loaded='/projects/dash-budget']");
        await Assertions.Expect(page.Locator("#banner")).ToBeHiddenAsync();

        await WaitForJobAsync(await SubmitAsync("dash-budget"));
        var banner = page.Locator("#banner");
        await Assertions.Expect(banner).ToBeVisibleAsync(new LocatorAssertionsToBeVisibleOptions { Timeout = 15_000 });
        var budget = await farm.Http.GetFromJsonAsync<JsonElement>("/api/projects/dash-budget/budget");
        var state = budget.GetProperty("state").GetString();
        Assert.Contains(state, new[] { "soft", "hard" });
        await Assertions.Expect(banner).ToHaveAttributeAsync("data-state", state!);
        await Assertions.Expect(banner).ToContainTextAsync("dash-budget");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(farm.ScreenshotFolder, "dashboard-budget.png"), FullPage = true });
    }

    [Fact]
    public async Task The_job_page_shows_the_jobs_own_budget_banner_when_its_soft_threshold_is_crossed()
    {
        const string project = "dash-job-budget";
        var job = await SubmitAsync(project);
        await WaitForJobAsync(job);
        var page = await farm.NewPageAsync(_problems);
        await page.GotoAsync($"/#/jobs/{job}");
        await page.WaitForSelectorAsync($"body[data-loaded='/jobs/{job}']");
        var banner = page.Locator("#job-banner");
        await Assertions.Expect(banner).ToBeHiddenAsync();

        // A budget set below what the job spent crosses its soft threshold (not its limit): the crossing is pushed to
        // the open page, which bills nothing more, so no spend push can be what shows the banner.
        var spent = (await farm.Http.GetFromJsonAsync<JsonElement>($"/api/jobs/{job}/budget")).GetProperty("spentUsd").GetDecimal();
        using var put = await farm.Http.PutAsJsonAsync($"/api/jobs/{job}/budget", new { limitUsd = Math.Round(spent * 2, 6), softFraction = 0.25 });
        var answer = await put.Content.ReadAsStringAsync();
        Assert.True(put.StatusCode == HttpStatusCode.OK, $"PUT /api/jobs/{job}/budget answered {(int)put.StatusCode}: {answer}");
        Assert.Equal("soft", JsonDocument.Parse(answer).RootElement.GetProperty("state").GetString());

        await Assertions.Expect(banner).ToBeVisibleAsync(new LocatorAssertionsToBeVisibleOptions { Timeout = 15_000 });
        await Assertions.Expect(banner).ToHaveAttributeAsync("data-state", "soft");
        await Assertions.Expect(banner).ToContainTextAsync("This job has spent");
        // The project has no budget: its banner stays away.
        await Assertions.Expect(page.Locator("#banner")).ToBeHiddenAsync();
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(farm.ScreenshotFolder, "dashboard-job-budget.png"), FullPage = true });
        Assert.Empty(_problems);
    }

    [Fact]
    public async Task The_project_page_lists_budget_crossings_newest_first_as_they_are_pushed()
    {
        const string project = "dash-alerts";
        var job = await SubmitAsync(project);
        await WaitForJobAsync(job);
        var page = await farm.NewPageAsync(_problems);
        await page.GotoAsync($"/#/projects/{project}");
        await page.WaitForSelectorAsync($"body[data-loaded='/projects/{project}']");
        await Assertions.Expect(page.Locator("#alerts")).ToContainTextAsync("No budget threshold crossed yet.");

        // Budgets set at or below what was spent cross at once and bill nothing, so only the budget pushes can bring the
        // rows: first the job's soft threshold, then the project's soft and hard together.
        var spent = await ProjectSpendAsync(project);
        using (var put = await farm.Http.PutAsJsonAsync($"/api/jobs/{job}/budget", new { limitUsd = Math.Round(spent * 2, 6), softFraction = 0.25 }))
        {
            Assert.True(put.StatusCode == HttpStatusCode.OK, await put.Content.ReadAsStringAsync());
        }

        var rows = page.Locator("#budget-alerts tbody tr");
        await Assertions.Expect(rows).ToHaveCountAsync(1, new LocatorAssertionsToHaveCountOptions { Timeout = 15_000 });
        using (var put = await farm.Http.PutAsJsonAsync($"/api/projects/{project}/budget", new { limitUsd = spent, softFraction = 0.5 }))
        {
            Assert.True(put.StatusCode == HttpStatusCode.OK, await put.Content.ReadAsStringAsync());
        }

        await Assertions.Expect(rows).ToHaveCountAsync(3, new LocatorAssertionsToHaveCountOptions { Timeout = 15_000 });
        var alerts = (await farm.Http.GetFromJsonAsync<List<Coordinator.Money.BudgetAlert>>($"/api/projects/{project}/budget/alerts", SpecJson.Options))!;
        Assert.Equal(["hard", "soft", "soft"], alerts.Select(a => a.Level));
        Assert.Equal([null, null, job], alerts.Select(a => a.JobId));
        Assert.True(alerts[0].Id > alerts[1].Id && alerts[1].Id > alerts[2].Id);
        for (var i = 0; i < alerts.Count; i++)
        {
            await Assertions.Expect(rows.Nth(i)).ToHaveAttributeAsync("data-alert", alerts[i].Id.ToString(CultureInfo.InvariantCulture));
            await Assertions.Expect(rows.Nth(i)).ToHaveAttributeAsync("data-level", alerts[i].Level);
            Assert.Equal(spent, alerts[i].SpentUsd);
            await AssertShowsAsync(rows.Nth(i).Locator(".spent"), alerts[i].SpentUsd);
        }

        await Assertions.Expect(rows.Nth(0).Locator(".whose")).ToHaveTextAsync($"project {project}");
        await Assertions.Expect(rows.Nth(2).Locator(".whose")).ToHaveTextAsync($"job {job.ToString()[..8]}");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(farm.ScreenshotFolder, "dashboard-budget-alerts.png"), FullPage = true });
        Assert.Empty(_problems);
    }

    [Fact]
    public async Task The_api_reference_renders_the_served_document_without_leaving_the_machine()
    {
        var page = await farm.NewPageAsync(_problems);
        var requests = new ConcurrentQueue<string>();
        page.Request += (_, request) => requests.Enqueue(request.Url);
        var document = await page.RunAndWaitForResponseAsync(
            () => page.GotoAsync("/api-docs"),
            response => response.Url.EndsWith("/openapi/v1.json", StringComparison.Ordinal),
            new PageRunAndWaitForResponseOptions { Timeout = 30_000 });
        Assert.True(document.Ok, $"/openapi/v1.json answered {document.Status}");

        // Scalar parses the whole document in the page before it draws anything: seconds on a loaded CI machine.
        var rendered = new LocatorAssertionsToBeVisibleOptions { Timeout = 30_000 };
        await Assertions.Expect(page.GetByText("ProgrammableFilm API").First).ToBeVisibleAsync(rendered);
        await Assertions.Expect(page.GetByText("Pause a job: nothing new is dispatched; running attempts finish.").First).ToBeVisibleAsync(rendered);
        await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
        var outside = requests.Where(u => !u.StartsWith(farm.Server.ToString(), StringComparison.Ordinal) && !u.StartsWith("data:", StringComparison.Ordinal) && !u.StartsWith("blob:", StringComparison.Ordinal)).ToList();
        Assert.True(outside.Count == 0, $"the reference page fetched from outside this machine:\n{string.Join('\n', outside)}");
        Assert.Contains(requests, u => u.EndsWith("/openapi/v1.json", StringComparison.Ordinal));
    }

    /// <summary>
    /// Waits (pushes arrive within seconds) until <paramref name="locator"/> shows <paramref name="expected"/> dollars as the
    /// dashboard formats them: cents from a dollar up, four places from a cent, six below, so within half the last place.
    /// </summary>
    private static async Task AssertShowsAsync(ILocator locator, decimal expected)
    {
        var halfPlace = Math.Abs(expected) >= 1 ? 0.005m : Math.Abs(expected) >= 0.01m ? 0.00005m : 0.0000005m;
        var deadline = DateTime.UtcNow.AddSeconds(15);
        string text;
        while (true)
        {
            text = await locator.InnerTextAsync();
            if (text.StartsWith('$') && decimal.TryParse(text[1..], NumberStyles.Number, CultureInfo.InvariantCulture, out var shown) && Math.Abs(shown - expected) <= halfPlace + 0.000000001m)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the page shows {text}, the API says ${expected}");
            await Task.Delay(200);
        }
    }

    private async Task<Guid> SubmitAsync(string project)
    {
        using var content = new StringContent($"project: {project}\n{Spec}", Encoding.UTF8, "application/yaml");
        using var response = await farm.Http.PostAsync($"/api/projects/{project}/jobs", content);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return Guid.Parse(response.Headers.Location!.OriginalString.Split('/')[^1]);
    }

    private async Task<JobStatus> WaitForJobAsync(Guid jobId)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            var status = (await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options))!;
            if (status.State is "Succeeded" or "Failed" or "Cancelled")
            {
                Assert.True(status.State == "Succeeded", $"{status.State}: {status.Error}\n{farm.Output}");
                return status;
            }

            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} still {status.State}\n{farm.Output}");
            await Task.Delay(200);
        }
    }

    private async Task<Guid> ShotIdAsync(Guid jobId) => (await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options))!.Shots[0].Id;

    /// <summary>The page shows at most ten thumbnails: every keyframe, or every second, third... when there are more.</summary>
    private async Task<int> KeyframeCountAsync(Guid jobId)
    {
        var keyframes = (await farm.Http.GetFromJsonAsync<ShotTimeline>($"/api/shots/{await ShotIdAsync(jobId)}/timeline", SpecJson.Options))!.Keyframes.Count;
        Assert.True(keyframes > 1);
        var step = (keyframes + 9) / 10;
        return (keyframes + step - 1) / step;
    }

    private async Task<decimal> ProjectSpendAsync(string project) =>
        (await farm.Http.GetFromJsonAsync<List<ProjectSummary>>("/api/projects", SpecJson.Options))!.Single(p => p.Project == project).SpentUsd;
}
