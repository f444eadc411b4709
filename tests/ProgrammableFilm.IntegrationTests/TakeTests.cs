using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Takes;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>Variants as takes on the farm (PostgreSQL, RabbitMQ, worker processes, real diffusion and ffmpeg): compare, approve, iterate.</summary>
public class TakeTests(FarmFixture farm) : IClassFixture<FarmFixture>
{
    private const string Project = "it-takes";

    private const string SweepYaml = """
        project: it-takes
        shots:
          - name: sweep
            prompt: a red ball rolling left to right in the desert
            duration: 1
            fps: 5
            width: 64
            height: 64
            steps: 4
            engine: diffusion
            keyframeInterval: 4
            variants:
              grid:
                seed: [1, 2, 3]
                guidance: [1.5, 6]
        """;

    [Fact]
    public async Task A_three_by_two_seed_by_guidance_sweep_renders_six_distinct_takes_and_approving_one_makes_it_the_current_version()
    {
        var status = await SubmitAndWaitAsync(SweepYaml);
        Assert.True(status.State == "Succeeded", $"{status.Error}\n{farm.WorkerOutput}");
        Assert.Equal(["sweep#1", "sweep#2", "sweep#3", "sweep#4", "sweep#5", "sweep#6"], status.Shots.Select(s => s.Name));

        var takes = (await farm.Http.GetFromJsonAsync<ShotTakes>($"/api/shots/{status.Shots[0].Id}/takes", SpecJson.Options))!;
        Assert.Equal("sweep", takes.Name);
        Assert.Null(takes.Current);
        Assert.Equal([(1L, 1.5), (1L, 6.0), (2L, 1.5), (2L, 6.0), (3L, 1.5), (3L, 6.0)], takes.Takes.Select(t => (t.Parameters.Seed, t.Parameters.Guidance)));
        foreach (var take in takes.Takes)
        {
            Assert.Equal("pending", take.Review);
            Assert.Equal([0, 4], take.Keyframes.Select(k => k.Frame));
            Assert.True(take.Cost > 0 && take.Metrics.Flicker >= 0 && take.Metrics.SeamError >= 0, $"take {take.Number}: cost {take.Cost}, {take.Metrics}");
            Assert.InRange(take.Metrics.PromptAdherence!.Value, 0, 1);
            using var video = await farm.Http.GetAsync(take.VideoUrl);
            Assert.Equal(HttpStatusCode.OK, video.StatusCode);
        }

        // Guidance enters the sampler, so no two takes share a frame: every keyframe is rendered and billed per take.
        var folders = status.Shots.Select(s => Path.Combine(farm.StorageRoot, Path.GetDirectoryName(s.Video!)!, "frames")).ToList();
        var firstFrames = folders.Select(f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(Path.Combine(f, "00000.png"))))).ToList();
        Assert.Equal(6, firstFrames.Distinct().Count());
        await using (var db = farm.CreateDbContext())
        {
            var ids = status.Shots.Select(s => s.Id).ToList();
            Assert.Equal(0, await db.TaskReuses.CountAsync(r => ids.Contains(r.ShotId)));
            var keyframeBills = await db.Usage.Join(db.Tasks.Where(t => t.Kind == "keyframe"), u => u.TaskId, t => t.Id, (u, t) => u.ShotId).Where(id => ids.Contains(id)).ToListAsync();
            Assert.Equal(12, keyframeBills.Count);
            Assert.All(ids, id => Assert.Equal(2, keyframeBills.Count(b => b == id)));
        }

        var probe = await TestEnvironment.RunAsync("ffprobe", ["-v", "error", "-show_entries", "format_tags", "-of", "json", Path.Combine(farm.StorageRoot, status.Shots[3].Video!)]);
        Assert.Contains("trainedAlgorithmicMedia", probe.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(status.Shots[3].Id.ToString(), probe.StandardOutput, StringComparison.Ordinal);

        var producer = farm.Api.CreateClient().WithKey(await TestKeys.CreateAsync(farm.ConnectionString, Project, ApiKeyRole.Producer));
        var submitter = farm.Api.CreateClient().WithKey(await TestKeys.CreateAsync(farm.ConnectionString, Project, ApiKeyRole.Submitter));
        using (var refused = await submitter.PostAsJsonAsync($"/api/shots/{takes.Takes[3].Id}/approve", new { note = "mine" }))
        {
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        }

        using (var noApproval = await submitter.PostAsJsonAsync($"/api/shots/{takes.Takes[0].Id}/iterate", new { variants = new { grid = new { seed = new[] { 11 } } } }))
        {
            Assert.Equal(HttpStatusCode.Conflict, noApproval.StatusCode);
        }

        var approvedAfter = DateTime.UtcNow;
        using (var approve = await producer.PostAsJsonAsync($"/api/shots/{takes.Takes[3].Id}/approve", new { note = "best motion", rejectOthers = "too dark" }))
        {
            Assert.True(approve.IsSuccessStatusCode, await approve.Content.ReadAsStringAsync());
            var after = (await approve.Content.ReadFromJsonAsync<ShotTakes>(SpecJson.Options))!;
            Assert.Equal((1, 4), (after.Current!.Version, after.Current.TakeNumber));
            Assert.StartsWith("tests Producer", after.Current.ApprovedBy, StringComparison.Ordinal);
            Assert.Equal(["rejected", "rejected", "rejected", "approved", "rejected", "rejected"], after.Takes.Select(t => t.Review));
            Assert.All(after.Takes.Where(t => t.Number != 4), t => Assert.Equal("too dark", t.ReviewNote));
        }

        var manifest = await farm.Http.GetFromJsonAsync<JsonElement>($"/api/shots/{takes.Takes[0].Id}/manifest?take=4");
        var approval = Assert.Single(manifest.GetProperty("take").GetProperty("approvals").EnumerateArray());
        Assert.Equal(1, approval.GetProperty("version").GetInt32());
        Assert.StartsWith("tests Producer", approval.GetProperty("approvedBy").GetString(), StringComparison.Ordinal);
        Assert.InRange(approval.GetProperty("approvedAt").GetDateTime().ToUniversalTime(), approvedAfter.AddSeconds(-1), DateTime.UtcNow);
        Assert.Equal(6.0, manifest.GetProperty("take").GetProperty("overrides").GetProperty("guidance").GetDouble());
        Assert.True(manifest.GetProperty("marking").GetProperty("aiGenerated").GetBoolean());
        var weights = Path.Combine(TestEnvironment.RepositoryRoot, "models", "pf-scene-v3.safetensors");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(weights))), manifest.GetProperty("engine").GetProperty("weights_sha256").GetString());
        var attemptWorkers = manifest.GetProperty("attempts").EnumerateArray().Select(a => a.GetProperty("worker").GetString()).OfType<string>().Distinct().Order(StringComparer.Ordinal);
        Assert.Equal(attemptWorkers, manifest.GetProperty("workers").EnumerateArray().Select(w => w.GetString()!));
        Assert.NotEmpty(attemptWorkers);
        Assert.Equal("sweep", manifest.GetProperty("spec").GetProperty("shots")[0].GetProperty("name").GetString());
        using (var noSuchTake = await farm.Http.GetAsync($"/api/shots/{takes.Takes[0].Id}/manifest?take=99"))
        {
            Assert.Equal(HttpStatusCode.NotFound, noSuchTake.StatusCode);
        }

        // A rollback: an earlier take approved again is a new version, and the current one.
        using (var again = await producer.PostAsJsonAsync($"/api/shots/{takes.Takes[1].Id}/approve", new { note = "on second thought" }))
        {
            var after = (await again.Content.ReadFromJsonAsync<ShotTakes>(SpecJson.Options))!;
            Assert.Equal((2, 2), (after.Current!.Version, after.Current.TakeNumber));
            Assert.Equal([(1, 4), (2, 2)], after.Versions.Select(v => (v.Version, v.TakeNumber)));
        }

        using (var rejectCurrent = await producer.PostAsJsonAsync($"/api/shots/{takes.Takes[1].Id}/reject", new { note = "no" }))
        {
            Assert.Equal(HttpStatusCode.Conflict, rejectCurrent.StatusCode);
        }

        var audit = await farm.Http.GetFromJsonAsync<JsonElement>($"/api/projects/{Project}/audit");
        Assert.Equal(["ok: v2", "ok: v1"], audit.GetProperty("entries").EnumerateArray().Where(e => e.GetProperty("action").GetString() == "take.approve" && takes.Takes.Any(t => t.Id.ToString() == e.GetProperty("target").GetString()) && e.GetProperty("outcome").GetString()!.StartsWith("ok", StringComparison.Ordinal)).Select(e => e.GetProperty("outcome").GetString()));

        // The next iteration, in one call: from the current version (take 2: seed 1, guidance 6), a new seed.
        using var iterate = await submitter.PostAsJsonAsync($"/api/shots/{takes.Takes[5].Id}/iterate", new { variants = new { grid = new { seed = new[] { 11 } } } });
        Assert.True(iterate.StatusCode == HttpStatusCode.Created, await iterate.Content.ReadAsStringAsync());
        var iteration = (await iterate.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options))!;
        Assert.Equal("sweep#7", Assert.Single(iteration.Shots).Name);
        Assert.Equal("Succeeded", (await WaitAsync(iteration.Id)).State);
        var seventh = (await farm.Http.GetFromJsonAsync<ShotTakes>($"/api/shots/{takes.Takes[0].Id}/takes", SpecJson.Options))!.Takes[^1];
        Assert.Equal((7, 11L, 6.0, takes.Takes[1].Id), (seventh.Number, seventh.Parameters.Seed, seventh.Parameters.Guidance, seventh.ParentTakeId));
        Assert.Equal("pending", seventh.Review);
    }

    [Fact]
    public async Task Bad_sweeps_and_reviews_are_400_problems_naming_the_field_and_write_nothing()
    {
        await using var db = farm.CreateDbContext();
        var jobsBefore = await db.Jobs.CountAsync();
        foreach (var (grid, field) in new[]
        {
            ("seed: [1, 2, 3, 4, 5]\n        guidance: [1, 2, 3, 4, 5]", "shots[0].variants.grid"),
            ("seed: [1, 2]\n        colour: [red, blue]", "shots[0].variants.grid.colour"),
            ("seed: [1, -2]", "shots[0].variants.grid.seed[1]"),
        })
        {
            var yaml = SweepYaml.Replace("seed: [1, 2, 3]\n        guidance: [1.5, 6]", grid, StringComparison.Ordinal);
            using var response = await farm.Http.PostAsync($"/api/projects/{Project}/jobs", new StringContent(yaml, Encoding.UTF8, "application/yaml"));
            await AssertProblemAsync(response, field);
        }

        Assert.Equal(jobsBefore, await db.Jobs.CountAsync());

        // Reviews need a rendered take: a small procedural sweep of this test's own, so no check depends on test order.
        var status = await SubmitAndWaitAsync("""
            project: it-takes
            shots:
              - {name: reviewed, prompt: a red ball rolling left to right, duration: 1, fps: 4, width: 64, height: 64, engine: procedural, variants: {grid: {seed: [1, 2]}}}
            """);
        Assert.True(status.State == "Succeeded", $"{status.Error}\n{farm.WorkerOutput}");
        var (first, second) = (status.Shots[0].Id, status.Shots[1].Id);
        var producer = farm.Api.CreateClient().WithKey(await TestKeys.CreateAsync(farm.ConnectionString, Project, ApiKeyRole.Producer));
        var submitter = farm.Api.CreateClient().WithKey(await TestKeys.CreateAsync(farm.ConnectionString, Project, ApiKeyRole.Submitter));
        var tooLong = new string('x', 1001);
        foreach (var (path, body, field) in new (string, object, string)[]
        {
            ($"/api/shots/{second}/reject", new { note = "" }, "note"),
            ($"/api/shots/{second}/reject", new { note = tooLong }, "note"),
            ($"/api/shots/{second}/approve", new { note = tooLong }, "note"),
            ($"/api/shots/{second}/approve", new { note = "fine", rejectOthers = tooLong }, "rejectOthers"),
            ($"/api/shots/{second}/approve", new { note = "fine", rejectOthers = " " }, "rejectOthers"),
        })
        {
            using var response = await producer.PostAsJsonAsync(path, body);
            await AssertProblemAsync(response, field);
        }

        var lineage = await db.Shots.Where(s => s.Id == first).Select(s => s.LineageId).SingleAsync();
        Assert.False(await db.ShotVersions.AnyAsync(v => v.LineageId == lineage));
        Assert.Equal(["pending", "pending"], (await farm.Http.GetFromJsonAsync<ShotTakes>($"/api/shots/{first}/takes", SpecJson.Options))!.Takes.Select(t => t.Review));

        using (var approve = await producer.PostAsJsonAsync($"/api/shots/{first}/approve", new { note = "the one" }))
        {
            Assert.True(approve.IsSuccessStatusCode, await approve.Content.ReadAsStringAsync());
        }

        var jobsAfterSweep = await db.Jobs.CountAsync();
        foreach (var (body, field) in new (object, string)[]
        {
            (new { variants = new { grid = new { colour = new[] { "red" } } } }, "variants.grid.colour"),
            (new { variants = new { grid = new { seed = new[] { 1, 2, 3, 4, 5 }, guidance = new[] { 1, 2, 3, 4, 5 } } } }, "variants.grid"),
            (new { variants = new[] { new { seed = 3, tint = "red" } } }, "variants[0].tint"),
            (new { variants = new { grid = new { seed = new[] { 3 } } }, colour = "red" }, "colour"),
            (new { lane = "preview" }, "variants"),
        })
        {
            using var response = await submitter.PostAsJsonAsync($"/api/shots/{first}/iterate", body);
            await AssertProblemAsync(response, field);
        }

        Assert.Equal(jobsAfterSweep, await db.Jobs.CountAsync());
        Assert.Equal(2, await db.Shots.CountAsync(s => s.LineageId == lineage));
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, string field)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} for {field}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(JsonDocument.Parse(text).RootElement.GetProperty("errors").TryGetProperty(field, out _), $"{field} not named: {text}");
    }

    private async Task<JobStatus> SubmitAndWaitAsync(string yaml)
    {
        using var response = await farm.Http.PostAsync($"/api/projects/{Project}/jobs", new StringContent(yaml, Encoding.UTF8, "application/yaml"));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return await WaitAsync((await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options))!.Id);
    }

    private async Task<JobStatus> WaitAsync(Guid jobId)
    {
        var deadline = DateTime.UtcNow.AddMinutes(5);
        while (DateTime.UtcNow < deadline)
        {
            var status = (await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options))!;
            if (status.State is "Succeeded" or "Failed" or "Cancelled")
            {
                return status;
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"job {jobId} did not finish in 5 minutes\n{farm.WorkerOutput}");
    }
}
