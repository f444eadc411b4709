using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Costs;

namespace ProgrammableFilm.IntegrationTests;

public class FarmRenderTests(FarmFixture farm) : IClassFixture<FarmFixture>
{
    private const string ShotYaml = """
        project: it-farm
        lane: preview
        shots:
          - name: racing-at-dusk
            prompt: a red car racing left to right at dusk
            duration: 3
            fps: 24
            width: 320
            height: 176
            seed: 7
            engine: procedural
            keyframeInterval: 12
        """;

    [Fact]
    public async Task A_three_second_shot_renders_on_two_worker_processes_to_a_72_frame_mp4_with_its_manifest_and_cost()
    {
        var status = await SubmitAndWaitAsync(ShotYaml);

        Assert.True(status.State == "Succeeded", $"job ended {status.State}: {status.Error}\n{farm.WorkerOutput}");
        var shot = Assert.Single(status.Shots);
        var video = Path.Combine(farm.StorageRoot, shot.Video!);
        var probe = await FfprobeResult.ProbeAsync(video);
        Assert.Equal(("h264", 320, 176, 72, 24.0), (probe.Codec, probe.Width, probe.Height, probe.Frames, probe.FramesPerSecond));

        await using var db = farm.CreateDbContext();
        var tasks = await db.Tasks.Where(t => t.ShotId == shot.Id).ToListAsync();
        Assert.Equal(14, tasks.Count);
        Assert.All(tasks, t => Assert.Equal(RenderTaskState.Succeeded, t.State));
        var attempts = await db.Attempts.Where(a => tasks.Select(t => t.Id).Contains(a.TaskId)).ToListAsync();
        Assert.Equal(["worker-a", "worker-b"], attempts.Select(a => a.WorkerId!).Distinct().Order());

        var ledger = await db.Usage.Where(u => u.ShotId == shot.Id).ToListAsync();
        Assert.Equal(attempts.Select(a => a.Id).Order(), ledger.Select(u => u.AttemptId).Order());
        var price = PriceTable.Default.For("cpu").DollarsPerHour;
        Assert.All(ledger, row => Assert.Equal(CostCalculator.Cost(row.DeviceSeconds, price), row.Cost));
        Assert.All(ledger, row => Assert.True(row.DeviceSeconds > 0));
        var cost = await farm.Http.GetFromJsonAsync<JobCost>($"/api/jobs/{status.Id}/cost", SpecJson.Options);
        var shotCost = Assert.Single(cost!.Shots);
        Assert.Equal(ledger.Sum(u => u.Cost), shotCost.Cost);
        Assert.Equal(ledger.Sum(u => u.DeviceSeconds), shotCost.DeviceSeconds, tolerance: 1e-9);
        Assert.Equal(ledger.Count, shotCost.Attempts);
        Assert.Equal(shotCost.Cost, cost.Cost);

        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(farm.StorageRoot, shot.Manifest!)));
        var root = manifest.RootElement;
        Assert.StartsWith("AI-generated", root.GetProperty("disclosure").GetString(), StringComparison.Ordinal);
        Assert.Equal(7, root.GetProperty("shot").GetProperty("seed").GetInt64());
        Assert.Equal("procedural", root.GetProperty("shot").GetProperty("engine").GetString());
        Assert.Equal(72, root.GetProperty("shot").GetProperty("frameCount").GetInt32());
        Assert.Equal(14, root.GetProperty("attempts").GetArrayLength());
        Assert.Equal(["worker-a", "worker-b"], root.GetProperty("workers").EnumerateArray().Select(w => w.GetString()!));
        Assert.Equal(shotCost.Cost, root.GetProperty("usage").GetProperty("cost").GetDecimal());
        Assert.True(root.GetProperty("metrics").GetProperty("flicker").GetDouble() >= 0);
    }

    [Fact]
    public async Task The_mp4_manifest_and_frames_download_through_the_api()
    {
        var status = await SubmitAndWaitAsync(ShotYaml.Replace("racing-at-dusk", "downloads", StringComparison.Ordinal).Replace("duration: 3", "duration: 1", StringComparison.Ordinal));
        var shot = Assert.Single(status.Shots);

        using var video = await farm.Http.GetAsync($"/api/shots/{shot.Id}/video");
        Assert.Equal(HttpStatusCode.OK, video.StatusCode);
        Assert.Equal("video/mp4", video.Content.Headers.ContentType!.MediaType);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(farm.StorageRoot, shot.Video!)), await video.Content.ReadAsByteArrayAsync());

        using var frame = await farm.Http.GetAsync($"/api/shots/{shot.Id}/frames/23");
        Assert.Equal("image/png", frame.Content.Headers.ContentType!.MediaType);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], (await frame.Content.ReadAsByteArrayAsync())[..4]);

        using var missing = await farm.Http.GetAsync($"/api/shots/{shot.Id}/frames/24");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType!.MediaType);

        var manifest = await farm.Http.GetFromJsonAsync<JsonElement>($"/api/shots/{shot.Id}/manifest");
        Assert.Equal("downloads", manifest.GetProperty("shot").GetProperty("name").GetString());
    }

    private async Task<JobStatus> SubmitAndWaitAsync(string yaml)
    {
        using var content = new StringContent(yaml, Encoding.UTF8, "application/yaml");
        using var response = await farm.Http.PostAsync("/api/projects/it-farm/jobs", content);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        var job = (await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options))!;
        Assert.Equal($"/api/jobs/{job.Id}", response.Headers.Location!.OriginalString);

        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (DateTime.UtcNow < deadline)
        {
            var status = (await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{job.Id}", SpecJson.Options))!;
            if (status.State is "Succeeded" or "Failed")
            {
                return status;
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"job {job.Id} did not finish in 3 minutes\n{farm.WorkerOutput}");
    }
}
