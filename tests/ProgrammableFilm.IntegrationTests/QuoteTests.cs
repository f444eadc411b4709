using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Quotes;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>Quotes on a real farm: two worker processes rendering real procedural shots, billed by the real ledger.</summary>
public class QuoteTests(FarmFixture farm) : IClassFixture<FarmFixture>
{
    private const string Project = "it-quotes";

    /// <summary>Shots of one kind (procedural 64x64): two one-frame keyframe tasks and an ffmpeg assembly each.</summary>
    private static string Spec(string job, int shots, int from = 0, string project = Project) =>
        $"project: {project}\nname: {job}\nshots:\n" + string.Concat(Enumerable.Range(from, shots).Select(i =>
            $"  - {{name: shot-{i:D2}, prompt: \"a red car racing left to right at dusk\", duration: 0.25, fps: 8, width: 64, height: 64, keyframeInterval: 1, seed: {i}}}\n"));

    [Fact]
    public async Task After_20_shots_of_a_kind_its_quotes_come_within_10_percent_of_the_ledger()
    {
        // Before any history: the engine's prior, a wide range, and the live fleet's wall time.
        var first = await QuoteAsync(Spec("probe", 1));
        Assert.Equal("prior", first.Shots.Single().Basis);
        Assert.True(first.LowUsd < first.CostUsd && first.CostUsd < first.HighUsd, JsonSerializer.Serialize(first));
        Assert.Equal("cpu", first.DeviceSku);

        // 20 shots of history, then 10 shots quoted from it.
        var warmUp = await FarmChecks.SubmitAsync(farm.Http, Project, Spec("history", 20));
        await FarmChecks.WaitForJobAsync(farm.Http, warmUp, "Succeeded", TimeSpan.FromMinutes(2), () => farm.WorkerOutput);
        var informed = await QuoteAsync(Spec("probe", 1));
        Assert.Equal("history", informed.Shots.Single().Basis);
        Assert.True(informed.Shots.Single().HistoryShots >= 20, JsonSerializer.Serialize(informed));
        Assert.NotNull(informed.WallSeconds);
        Assert.True(informed.LiveDevices >= 2);

        var measured = await FarmChecks.SubmitAsync(farm.Http, Project, Spec("measured", 10, from: 20));
        await FarmChecks.WaitForJobAsync(farm.Http, measured, "Succeeded", TimeSpan.FromMinutes(2), () => farm.WorkerOutput);

        // The job page's contract: the quote, the actual cost and the error once finished.
        var quote = await farm.Http.GetFromJsonAsync<JsonElement>($"/api/jobs/{measured}/quote");
        foreach (var field in new[] { "costUsd", "lowUsd", "highUsd", "actualCostUsd", "errorFraction", "deviceSeconds", "wallSeconds", "energyKwh" })
        {
            Assert.True(quote.TryGetProperty(field, out var value) && value.ValueKind == JsonValueKind.Number, $"{field} in {quote}");
        }

        await using (var db = farm.CreateDbContext())
        {
            var billed = await db.Usage.Where(u => u.JobId == measured).ToListAsync();
            Assert.Equal(billed.Sum(u => u.Cost), quote.GetProperty("actualCostUsd").GetDecimal());
            var exact = billed.Sum(u => (decimal)u.DeviceSeconds * u.DollarsPerHour / 3600m);
            var quoted = (decimal)quote.GetProperty("deviceSeconds").GetDouble() * 0.04m / 3600m;
            Assert.Equal((double)((exact - quoted) / quoted), quote.GetProperty("errorFraction").GetDouble(), 6);
        }

        var accuracy = await farm.Http.GetFromJsonAsync<QuoteAccuracy>($"/api/projects/{Project}/quotes/accuracy", SpecJson.Options);
        var kind = Assert.Single(accuracy!.Kinds);
        Assert.Equal("procedural 64x64", kind.Kind);
        Assert.Equal(30, kind.Shots);
        Assert.Equal(10, kind.SettledShots);
        Assert.True(kind.SettledMedianAbsError < 0.10, $"median absolute error after 20 shots: {kind.SettledMedianAbsError:P1} (all shots: {kind.MedianAbsError:P1}, bias {kind.MedianError:P1})");
    }

    [Fact]
    public async Task A_quote_of_an_invalid_spec_is_a_400_naming_the_field_and_writes_nothing()
    {
        int quotesBefore, jobsBefore;
        await using (var db = farm.CreateDbContext())
        {
            (quotesBefore, jobsBefore) = (await db.JobQuotes.CountAsync(), await db.Jobs.CountAsync());
        }

        var badFps = await PostQuoteAsync(Spec("bad", 1).Replace("fps: 8", "fps: 0", StringComparison.Ordinal));
        var otherProject = await PostQuoteAsync(Spec("bad", 1).Replace($"project: {Project}", "project: someone-else", StringComparison.Ordinal));
        var notYaml = await PostQuoteAsync("shots: [", "application/yaml");

        Assert.Contains("shots[0].fps", badFps.GetProperty("errors").EnumerateObject().Select(e => e.Name));
        Assert.Contains("project", otherProject.GetProperty("errors").EnumerateObject().Select(e => e.Name));
        Assert.Equal(400, notYaml.GetProperty("status").GetInt32());
        await using var after = farm.CreateDbContext();
        Assert.Equal((quotesBefore, jobsBefore), (await after.JobQuotes.CountAsync(), await after.Jobs.CountAsync()));
    }

    [Fact]
    public async Task A_submitted_job_keeps_the_quote_it_was_given()
    {
        // Its own project, so that its shots are not in the accuracy test's history.
        var quoted = await QuoteAsync(Spec("kept", 2, project: "it-quotes-kept"), "it-quotes-kept");
        var job = await FarmChecks.SubmitAsync(farm.Http, "it-quotes-kept", Spec("kept", 2, project: "it-quotes-kept"));

        var stored = await farm.Http.GetFromJsonAsync<JobQuoteView>($"/api/jobs/{job}/quote", SpecJson.Options);
        await using var db = farm.CreateDbContext();
        var takes = await db.ShotQuotes.Where(q => q.JobId == job).ToListAsync();

        Assert.Equal(2, takes.Count);
        Assert.All(takes, t => Assert.Equal("procedural 64x64", t.Kind));
        Assert.Equal(takes.Sum(t => t.DeviceSeconds), stored!.DeviceSeconds, 9);
        Assert.True(stored.CostUsd > 0 && stored.LowUsd <= stored.CostUsd && stored.CostUsd <= stored.HighUsd);

        Assert.Equal(quoted.Shots.Select(s => s.Kind), takes.Select(t => t.Kind));
        using var missing = await farm.Http.GetAsync($"/api/jobs/{Guid.NewGuid()}/quote");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        await FarmChecks.WaitForJobAsync(farm.Http, job, "Succeeded", TimeSpan.FromMinutes(2), () => farm.WorkerOutput);
    }

    private async Task<QuoteView> QuoteAsync(string yaml, string project = Project)
    {
        using var content = new StringContent(yaml, Encoding.UTF8, "application/yaml");
        using var response = await farm.Http.PostAsync($"/api/projects/{project}/quotes", content);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<QuoteView>(SpecJson.Options))!;
    }

    private async Task<JsonElement> PostQuoteAsync(string body, string contentType = "application/yaml")
    {
        using var content = new StringContent(body, Encoding.UTF8, contentType);
        return await AccessTests.AssertProblemAsync(await farm.Http.PostAsync($"/api/projects/{Project}/quotes", content), HttpStatusCode.BadRequest);
    }
}
