using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Quotes;
using ProgrammableFilm.Domain.Money;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>Quotes on a real farm: two worker processes rendering real procedural shots, billed by the real ledger.</summary>
/// <summary>
/// One worker: the shots' device time then depends on the shot and the machine, not on which other task of the test
/// shares the two cores with it.
/// </summary>
public sealed class QuoteFarmFixture : FarmFixture
{
    protected override int WorkerCount => 1;
}

public class QuoteTests(QuoteFarmFixture farm, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<QuoteFarmFixture>
{
    private const string Project = "it-quotes";

    /// <summary>Shots of one kind (procedural 64x64): two one-frame keyframe tasks and an ffmpeg assembly each.</summary>
    private static string Spec(string job, int shots, int from = 0, string project = Project) =>
        $"project: {project}\nname: {job}\nshots:\n" + string.Concat(Enumerable.Range(from, shots).Select(i =>
            $"  - {{name: shot-{i:D2}, prompt: \"a red car racing left to right at dusk\", duration: 0.25, fps: 8, width: 64, height: 64, keyframeInterval: 1, seed: {i}}}\n"));

    /// <summary>
    /// The accuracy test's shots: real diffusion renders (64x64, 20 steps, 16 frames: three keyframes, two segments and
    /// an assembly), about a second of device time. A shot of two procedural frames costs one ffmpeg start (0.2 s),
    /// whose jitter alone (13 % between runs on a quiet machine) leaves no quote within 10 %, the ledger's own median
    /// included.
    /// </summary>
    private static string AccuracySpec(int shot) =>
        $"project: {Project}\nname: shot-{shot:D2}\nshots:\n  - {{name: shot-{shot:D2}, prompt: \"a red car racing left to right at dusk\", duration: 2, fps: 8, width: 64, height: 64, keyframeInterval: 8, engine: diffusion, steps: 20, seed: {shot}}}\n";

    /// <summary>
    /// A machine the test has to itself: processes outside its farm used at most this share of the CPU while the
    /// history's latest shots and the measured ones rendered. There the target is asserted.
    /// </summary>
    private const double QuietOthersShare = 0.10;

    /// <summary>
    /// A machine others load steadily: their share changed by at most this much between the history's latest shots and
    /// the measured ones. There the error must stay under <see cref="LoadedGuard"/> (docs/performance.md, session 9:
    /// 11 % and 13 % measured with others steady at 42 % and 45 %).
    /// </summary>
    private const double SteadyChange = 0.15;

    private const double LoadedGuard = 0.25;

    /// <summary>
    /// Rounds of 10 measured shots tried before the test gives up on the machine: a round during which others'
    /// load rose or fell sharply measures the machine, not the quote (session 9: 55 % when others went from a third of
    /// the machine to 57 % as the round began), and the next round is quoted from the machine as it has become.
    /// </summary>
    private const int MaxRounds = 3;

    [Fact]
    public async Task After_20_shots_of_a_kind_its_quotes_come_within_10_percent_of_the_ledger()
    {
        // Before any history: the engine's prior, a wide range, and the live fleet's wall time.
        var first = await QuoteAsync(AccuracySpec(99));
        Assert.Equal("prior", first.Shots.Single().Basis);
        Assert.True(first.LowUsd < first.CostUsd && first.CostUsd < first.HighUsd, JsonSerializer.Serialize(first));
        Assert.Equal("cpu", first.DeviceSku);

        // Shots submitted one after another as a producer works through a scene: each job is quoted, at its
        // submission, from the history of that moment; the measured ones from 20 shots of history or more. One shot
        // per job, so every shot's assembly runs on a farm doing nothing else (in a batch, the first assemblies share
        // the cores with the dispatch of the others' keyframes and cost more than the last).
        var history = await RenderOneByOneAsync(0, 10);
        var cpu = MachineCpu.Read();
        history.AddRange(await RenderOneByOneAsync(10, 10));
        var (_, before) = MachineCpu.Read().Since(cpu);
        List<Guid> measured;
        double farmShare, othersShare;
        var rounds = 0;
        while (true)
        {
            cpu = MachineCpu.Read();
            measured = await RenderOneByOneAsync(20 + (10 * rounds++), 10);
            (farmShare, othersShare) = MachineCpu.Read().Since(cpu);
            if (Math.Abs(othersShare - before) <= SteadyChange || rounds == MaxRounds)
            {
                break;
            }

            output.WriteLine($"round {rounds}: others' share of the machine went from {before:P0} to {othersShare:P0}; measuring again");
            before = othersShare;
        }

        var informed = await QuoteAsync(AccuracySpec(99));
        Assert.Equal("history", informed.Shots.Single().Basis);
        Assert.Equal(QuoteModel.RecentShots, informed.Shots.Single().HistoryShots);
        Assert.NotNull(informed.WallSeconds);
        Assert.True(informed.LiveDevices >= 1);

        // The job page's contract: the quote, the actual cost and the error once finished.
        var last = measured[^1];
        var quote = await farm.Http.GetFromJsonAsync<JsonElement>($"/api/jobs/{last}/quote");
        foreach (var field in new[] { "costUsd", "lowUsd", "highUsd", "actualCostUsd", "errorFraction", "deviceSeconds", "wallSeconds", "energyKwh" })
        {
            Assert.True(quote.TryGetProperty(field, out var value) && value.ValueKind == JsonValueKind.Number, $"{field} in {quote}");
        }

        string details;
        double error;
        await using (var db = farm.CreateDbContext())
        {
            var billed = await db.Usage.Where(u => u.JobId == last).ToListAsync();
            Assert.Equal(billed.Sum(u => u.Cost), quote.GetProperty("actualCostUsd").GetDecimal());
            var exact = billed.Sum(u => (decimal)u.DeviceSeconds * u.DollarsPerHour / 3600m);
            var quoted = (decimal)quote.GetProperty("deviceSeconds").GetDouble() * 0.04m / 3600m;
            Assert.Equal((double)((exact - quoted) / quoted), quote.GetProperty("errorFraction").GetDouble(), 6);

            // What a failure needs to be understood: every task's device time in the order billed, and each measured
            // take's quote against its own.
            var tasks = await db.Usage.Where(u => u.Project == Project).Join(db.Tasks, u => u.TaskId, t => t.Id, (u, t) => new { u.JobId, u.ShotId, t.Kind, u.DeviceSeconds, u.RecordedAt })
                .OrderBy(u => u.RecordedAt).ToListAsync();
            var takes = await db.ShotQuotes.Where(q => measured.Contains(q.JobId)).OrderBy(q => q.FinishedAt).ToListAsync();
            Assert.All(takes, t => Assert.Equal(QuoteModel.RecentShots, t.HistoryShots));
            error = QuoteModel.MedianAbsolute(takes.Select(t => t.ErrorFraction!.Value))!.Value;
            details = string.Join('\n', new[] { "keyframe", "segment", "assemble" }.Select(kind => $"history {kind}s (s): " + string.Join(' ', tasks.Where(t => history.Contains(t.JobId) && t.Kind == kind).Select(t => $"{t.DeviceSeconds:F3}"))))
                + "\n" + string.Join('\n', takes.Select(q => $"quoted {q.DeviceSeconds:F3} s, billed {q.ActualDeviceSeconds:F3} s ({q.ErrorFraction:+0.0%;-0.0%}): "
                    + string.Join(", ", tasks.Where(t => t.ShotId == q.ShotId).Select(t => $"{t.Kind} {t.DeviceSeconds:F3}"))));
        }

        // The dashboard's figure counts every settled shot, of every round.
        var accuracy = await farm.Http.GetFromJsonAsync<QuoteAccuracy>($"/api/projects/{Project}/quotes/accuracy", SpecJson.Options);
        var kind = Assert.Single(accuracy!.Kinds);
        Assert.Equal("diffusion 64x64 20 steps", kind.Kind);
        Assert.Equal(20 + (10 * rounds), kind.Shots);
        Assert.Equal(10 * rounds, kind.SettledShots);
        var report = $"median absolute error after 20 shots: {error:P1} (round {rounds}; every settled shot: {kind.SettledMedianAbsError:P1}, all shots: {kind.MedianAbsError:P1}, bias {kind.MedianError:P1}); "
            + $"while measured, the farm used {farmShare:P0} of the machine ({Environment.ProcessorCount} cores), other processes {othersShare:P0} ({before:P0} during the latest history)\n{details}";
        output.WriteLine(report);

        // A shot here is a second of wall time on both cores, billed as wall time × devices: when other work shares
        // the two cores, the same shot bills up to twice as much from one second to the next, and no quote made before
        // it can hold 10 %. The target is held where it means something, on a machine the test has to itself; under a
        // steady load the quote must still follow the machine (the prior, another kind's history, or a rate stuck on
        // the fresh worker's first, slower shots is off by far more); a machine whose load never held still for a
        // round fails the test as unmeasurable rather than passing it.
        var steady = Math.Abs(othersShare - before) <= SteadyChange;
        var quiet = steady && Math.Max(othersShare, before) <= QuietOthersShare;
        Assert.True(steady, $"others' load on the machine changed sharply in each of {MaxRounds} rounds, quote accuracy not measurable: {report}");
        Assert.True(quiet ? error < 0.10 : error < LoadedGuard, (quiet ? "" : "machine loaded steadily by others, 10 % not measurable: ") + report);
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
        Assert.Equal(takes.Sum(t => t.DeviceSeconds), stored!.DeviceSeconds, tolerance: 1e-9);
        Assert.True(stored.CostUsd > 0 && stored.LowUsd <= stored.CostUsd && stored.CostUsd <= stored.HighUsd);

        Assert.Equal(quoted.Shots.Select(s => s.Kind), takes.Select(t => t.Kind));
        using var missing = await farm.Http.GetAsync($"/api/jobs/{Guid.NewGuid()}/quote");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        await FarmChecks.WaitForJobAsync(farm.Http, job, "Succeeded", TimeSpan.FromMinutes(2), () => farm.WorkerOutput);
    }

    private async Task<List<Guid>> RenderOneByOneAsync(int from, int count)
    {
        var jobs = new List<Guid>();
        for (var i = from; i < from + count; i++)
        {
            var job = await FarmChecks.SubmitAsync(farm.Http, Project, AccuracySpec(i));
            await FarmChecks.WaitForJobAsync(farm.Http, job, "Succeeded", TimeSpan.FromMinutes(1), () => farm.WorkerOutput);
            jobs.Add(job);
        }

        return jobs;
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
