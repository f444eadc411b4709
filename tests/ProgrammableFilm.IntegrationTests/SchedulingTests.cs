using System.Net;
using System.Net.Http.Json;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>Placement by pool: engines and device memory decide where a task may go, and running out of memory moves it up.</summary>
public sealed class PlacementTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    private const long MiB = 1024 * 1024;
    private readonly WorkerDouble _worker = new(farm);

    private async Task AdvertiseAsync(string workerId, string pool, long memoryBytes, params string[] engines)
    {
        var client = _worker.Bus.CreateRequestClient<WorkerHeartbeat>(new Uri($"queue:{farm.QueuePrefix}worker-heartbeat"));
        await client.GetResponse<HeartbeatAcknowledged>(new WorkerHeartbeat
        {
            WorkerId = workerId, Pool = pool, DeviceSku = "test-gpu", DeviceCount = 1, Slots = 2, Hostname = "test",
            DeviceName = "test device", DeviceMemoryBytes = memoryBytes, Engines = engines, Tags = ["site-a"], Attempts = [],
        });
    }

    [Fact]
    public async Task Tasks_go_to_the_smallest_pool_that_runs_their_engine_and_an_out_of_memory_retry_goes_to_a_bigger_pool()
    {
        await AdvertiseAsync("previz-1", "previz", 256 * MiB, "procedural");
        await AdvertiseAsync("small-1", "gpu-small", 1024 * MiB, "procedural", "diffusion");
        await AdvertiseAsync("big-1", "gpu-big", 16384 * MiB, "procedural", "diffusion");

        var procedural = await _worker.SubmitAsync("it-placement");
        var diffusion = await _worker.SubmitAsync("it-placement", """
            shots:
              - {name: dream, prompt: a red ball rolling in the desert, duration: 1, fps: 24, width: 64, height: 64, keyframeInterval: 12, engine: diffusion, steps: 2}
            """);

        var previz = await _worker.WaitForAttemptsAsync(procedural, 3);
        Assert.All(previz.Values, a => Assert.Equal("previz", a.Pool));
        var dreams = await _worker.WaitForAttemptsAsync(diffusion, 3);
        Assert.All(dreams.Values, a => Assert.Equal("gpu-small", a.Pool));

        var first = dreams["kf-00000"];
        await _worker.ClaimGrantedAsync(first.Id, "small-1");
        await _worker.Bus.Publish(WorkerDouble.Failed(first.Id, 0.5, "out-of-memory", "CUDA out of memory", "small-1"));

        var retried = await _worker.WaitForAsync(
            db => db.Attempts.Where(a => a.TaskId == first.TaskId).OrderBy(a => a.Number).ToListAsync(),
            attempts => attempts.Count == 2);
        Assert.Equal(["gpu-small", "gpu-big"], retried.Select(a => a.Pool));
        await using var db = farm.CreateDbContext();
        var task = await db.Tasks.SingleAsync(t => t.Id == first.TaskId);
        Assert.Equal(1024 * MiB + 1, task.MinMemoryBytes);

        var fleet = await farm.Http.GetFromJsonAsync<List<WorkerStatus>>("/api/workers");
        var small = Assert.Single(fleet!, w => w.Id == "small-1");
        Assert.Equal(1024 * MiB, small.DeviceMemoryBytes);
    }
}

/// <summary>
/// What the dispatcher counts on every pass (a pool's queued messages per lane, a project's live attempts) is read
/// from the attempts alone, so each carries its task's project and lane from its dispatch.
/// </summary>
public sealed class LiveAttemptTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task A_queued_attempt_carries_its_jobs_project_and_lane_and_counts_in_that_projects_share()
    {
        var batch = await _worker.SubmitAsync("it-live-batch");
        var preview = await _worker.SubmitAsync("it-live-preview", "lane: preview\n" + WorkerDouble.OneSecondShot);

        var batchAttempts = await _worker.WaitForAttemptsAsync(batch, 3);
        var previewAttempts = await _worker.WaitForAttemptsAsync(preview, 3);
        Assert.All(batchAttempts.Values, a => Assert.Equal(("it-live-batch", (int?)1), (a.Project, a.Lane)));
        Assert.All(previewAttempts.Values, a => Assert.Equal(("it-live-preview", (int?)0), (a.Project, a.Lane)));

        var batchShare = await farm.Http.GetFromJsonAsync<ProjectShareStatus>("/api/projects/it-live-batch/share");
        var previewShare = await farm.Http.GetFromJsonAsync<ProjectShareStatus>("/api/projects/it-live-preview/share");
        Assert.Equal(batchAttempts.Count, batchShare!.LiveAttempts);
        Assert.Equal(previewAttempts.Count, previewShare!.LiveAttempts);
        Assert.Equal(batchAttempts.Count + previewAttempts.Count, previewShare.FleetLiveAttempts);
    }
}

/// <summary>
/// One worker with four slots shared by two projects that both keep it busy, each attempt sent alone: the share is
/// measured over about 1,200 one-frame tasks in seconds, fewer than the bundles of a default farm hold in flight.
/// The share with default bundles over the one-minute window is measured by <c>bench/farm.sh --share</c>.
/// </summary>
public sealed class FairShareFarmFixture : FarmFixture
{
    protected override int WorkerCount => 1;

    protected override IReadOnlyDictionary<string, string> WorkerSettings => new Dictionary<string, string> { ["Worker__Slots"] = "4" };

    protected override IReadOnlyDictionary<string, string> ExtraSettings => new Dictionary<string, string> { ["Coordinator:BundleSeconds"] = "0" };
}

public sealed class FairShareTests(FairShareFarmFixture farm) : IClassFixture<FairShareFarmFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task Two_busy_projects_with_weights_three_to_one_get_three_quarters_and_a_quarter_of_the_device_time()
    {
        Assert.Equal(HttpStatusCode.OK, (await farm.Http.PutAsJsonAsync("/api/projects/it-share-a/share", new { weight = 3 })).StatusCode);
        var shown = await farm.Http.GetFromJsonAsync<ProjectShareStatus>("/api/projects/it-share-a/share");
        Assert.Equal(3, shown!.Weight);
        var rejected = await farm.Http.PutAsJsonAsync("/api/projects/it-share-a/share", new { weight = -1 });
        Assert.Equal(HttpStatusCode.BadRequest, rejected.StatusCode);
        Assert.Contains("weight must be", await rejected.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // Forty seconds of one-frame tasks each: both projects have work queued for the whole measured window, which
        // holds about 1,200 attempts (with half as many, the share of runs on a loaded CI machine spread over ±0.05).
        const string Busy = """
            shots:
              - {name: busy, prompt: a red ball rolling in the desert, duration: 40, fps: 24, width: 160, height: 96, keyframeInterval: 1}
            """;
        var jobs = await Task.WhenAll(_worker.SubmitAsync("it-share-a", Busy), _worker.SubmitAsync("it-share-b", Busy));

        // Measured over what was dispatched while both had Ready work to spare.
        var attempts = await _worker.WaitForAsync(
            db => (from attempt in db.Attempts
                   join task in db.Tasks on attempt.TaskId equals task.Id
                   where jobs.Contains(task.JobId) && task.Kind == "keyframe"
                   select new { task.JobId, attempt.CreatedAt, attempt.DeviceSeconds, attempt.State }).ToListAsync(),
            list => list.Count(a => a.JobId == jobs[0] && a.State == AttemptState.Succeeded) >= 960,
            TimeSpan.FromMinutes(2));
        // The window opens once both jobs have work out and the second has caught up with the queue-full the first
        // was sent before the second existed; it closes while the first still has 40 Ready tasks, more than a pass
        // takes, since once a project runs short the other bursts into its room.
        var bothDispatched = attempts.GroupBy(a => a.JobId).Max(g => g.Min(a => a.CreatedAt));
        var opens = attempts.Where(a => a.CreatedAt >= bothDispatched).OrderBy(a => a.CreatedAt).Skip(16).First().CreatedAt;
        var closes = attempts.Where(a => a.JobId == jobs[0]).OrderByDescending(a => a.CreatedAt).Skip(40).First().CreatedAt;
        var measured = attempts.Where(a => a.State == AttemptState.Succeeded && a.CreatedAt >= opens && a.CreatedAt <= closes).ToList();
        var shareA = measured.Where(a => a.JobId == jobs[0]).Sum(a => a.DeviceSeconds) / measured.Sum(a => a.DeviceSeconds);
        Assert.InRange(shareA, 0.70, 0.80);
    }
}
