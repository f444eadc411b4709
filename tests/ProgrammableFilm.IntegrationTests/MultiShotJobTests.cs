using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>A job of several shots on worker processes: the job's roll-up and its cost report across shots.</summary>
public class MultiShotJobTests(FarmFixture farm) : IClassFixture<FarmFixture>
{
    // Different sizes, rates and keyframe intervals, so that each MP4 can only match its own shot.
    private const string ThreeShots = """
        project: it-multi
        lane: preview
        shots:
          - {name: opening, prompt: a red car racing left to right at dusk, duration: 1, fps: 24, width: 160, height: 96, seed: 1, engine: procedural, keyframeInterval: 12}
          - {name: middle, prompt: a blue ball rising over the ocean, duration: 1.5, fps: 12, width: 128, height: 72, seed: 2, engine: procedural, keyframeInterval: 6}
          - {name: closing, prompt: a green bird falling in the forest, duration: 2, fps: 8, width: 96, height: 64, seed: 3, engine: procedural, keyframeInterval: 8}
        """;

    private static readonly Dictionary<string, (int Width, int Height, int Frames, double Fps)> Expected = new(StringComparer.Ordinal)
    {
        ["opening"] = (160, 96, 24, 24),
        ["middle"] = (128, 72, 18, 12),
        ["closing"] = (96, 64, 16, 8),
    };

    [Fact]
    public async Task A_three_shot_job_succeeds_only_after_all_its_shots_each_with_its_mp4_and_manifest_and_its_cost_report_adds_up_to_the_ledger()
    {
        using var content = new StringContent(ThreeShots, Encoding.UTF8, "application/yaml");
        using var response = await farm.Http.PostAsync("/api/projects/it-multi/jobs", content);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        var jobId = (await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options))!.Id;

        // Every status seen on the way must be consistent, not just the last: a job may not be Succeeded while one of
        // its shots is still rendering.
        var seen = new List<JobStatus>();
        var deadline = DateTime.UtcNow.AddMinutes(3);
        JobStatus status;
        do
        {
            Assert.True(DateTime.UtcNow < deadline, $"job {jobId} did not finish in 3 minutes\n{farm.WorkerOutput}");
            await Task.Delay(100);
            status = (await farm.Http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options))!;
            seen.Add(status);
        }
        while (status.State is not ("Succeeded" or "Failed"));

        Assert.True(status.State == "Succeeded", $"job ended {status.State}: {status.Error}\n{farm.WorkerOutput}");
        Assert.DoesNotContain(seen, s => s.State == "Succeeded" && s.Shots.Any(shot => shot.State != "Succeeded"));
        Assert.Equal(["opening", "middle", "closing"], status.Shots.Select(s => s.Name));
        Assert.All(status.Shots, s => Assert.Equal("Succeeded", s.State));

        await using var db = farm.CreateDbContext();
        var job = await db.Jobs.SingleAsync(j => j.Id == jobId);
        var shots = await db.Shots.Where(s => s.JobId == jobId).ToListAsync();
        Assert.All(shots, s => Assert.True(s.FinishedAt <= job.FinishedAt, $"job finished at {job.FinishedAt:O}, before shot {s.Name} at {s.FinishedAt:O}"));

        foreach (var shot in status.Shots)
        {
            var probe = await FfprobeResult.ProbeAsync(Path.Combine(farm.StorageRoot, shot.Video!));
            var (width, height, frames, fps) = Expected[shot.Name];
            Assert.Equal(("h264", width, height, frames, fps), (probe.Codec, probe.Width, probe.Height, probe.Frames, probe.FramesPerSecond));
            using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(farm.StorageRoot, shot.Manifest!)));
            Assert.Equal((shot.Id, shot.Name, frames), (manifest.RootElement.GetProperty("shot").GetProperty("id").GetGuid(), manifest.RootElement.GetProperty("shot").GetProperty("name").GetString(), manifest.RootElement.GetProperty("shot").GetProperty("frameCount").GetInt32()));
        }

        // Every attempt of the job is billed once, and the cost report is the ledger summed, in total and per shot.
        var ledger = await db.Usage.Where(u => u.JobId == jobId).ToListAsync();
        var attempts = await db.Attempts.Where(a => db.Tasks.Any(t => t.Id == a.TaskId && t.JobId == jobId)).Select(a => a.Id).ToListAsync();
        Assert.Equal(attempts.Order(), ledger.Select(u => u.AttemptId).Order());
        var summaryPath = Path.Combine(farm.StorageRoot, ShotStorage.CostSummaryPath(jobId));
        Assert.True(File.Exists(summaryPath), $"{summaryPath} is missing");
        var summary = JsonSerializer.Deserialize<JobCost>(await File.ReadAllTextAsync(summaryPath), SpecJson.Options)!;
        Assert.Equal(jobId, summary.JobId);
        Assert.Equal((ledger.Sum(u => u.Cost), ledger.Count), (summary.Cost, summary.Attempts));
        // Doubles summed in another order (the database sums per group) differ in the last bits, so the comparison
        // is by tolerance, not by rounding to a decimal place (a value at a rounding tie flips).
        Assert.Equal(ledger.Sum(u => u.DeviceSeconds), summary.DeviceSeconds, 1e-9);
        Assert.Equal(ledger.Sum(u => u.EnergyJoules) / 3.6e6, summary.EnergyKilowattHours, tolerance: 1e-9);
        Assert.Equal(shots.Select(s => s.Id).Order(), summary.Shots.Select(s => s.ShotId).Order());
        foreach (var shotCost in summary.Shots)
        {
            var own = ledger.Where(u => u.ShotId == shotCost.ShotId).ToList();
            Assert.NotEmpty(own);
            Assert.Equal((own.Sum(u => u.Cost), own.Count), (shotCost.Cost, shotCost.Attempts));
            Assert.Equal(own.Sum(u => u.DeviceSeconds), shotCost.DeviceSeconds, 1e-9);
            Assert.Equal(status.Shots.Single(s => s.Id == shotCost.ShotId).Cost, shotCost.Cost);
        }

        var fromApi = (await farm.Http.GetFromJsonAsync<JobCost>($"/api/jobs/{jobId}/cost", SpecJson.Options))!;
        Assert.Equal((summary.JobId, summary.Cost, summary.Attempts), (fromApi.JobId, fromApi.Cost, fromApi.Attempts));
        Assert.Equal(summary.DeviceSeconds, fromApi.DeviceSeconds, 1e-9);
        Assert.Equal(summary.Shots.Select(s => (s.ShotId, s.Name, s.Cost, s.Attempts)), fromApi.Shots.Select(s => (s.ShotId, s.Name, s.Cost, s.Attempts)));
        Assert.Equal(summary.Devices.Select(d => (d.DeviceSku, d.DollarsPerHour, d.Cost)), fromApi.Devices.Select(d => (d.DeviceSku, d.DollarsPerHour, d.Cost)));
    }
}
