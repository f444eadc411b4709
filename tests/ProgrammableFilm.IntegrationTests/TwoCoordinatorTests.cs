namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// Two coordinators race for everything (dispatching the same Ready tasks, answering claims from one queue, running
/// the sweeps): the database's conditional updates must leave one outcome per task and one bill per attempt.
/// </summary>
public class TwoCoordinatorTests(TwoCoordinatorFixture farm) : IClassFixture<TwoCoordinatorFixture>
{
    private const string ThreeShots = """
        project: it-two-coordinators
        shots:
          - {name: dawn, prompt: a red car racing left to right at dawn, duration: 2, fps: 24, width: 96, height: 64, seed: 1, engine: procedural, keyframeInterval: 12}
          - {name: noon, prompt: a green bird flying right to left in the forest, duration: 2, fps: 24, width: 96, height: 64, seed: 2, engine: procedural, keyframeInterval: 12}
          - {name: dusk, prompt: a yellow boat sailing left to right on the ocean, duration: 2, fps: 24, width: 96, height: 64, seed: 3, engine: procedural, keyframeInterval: 12}
        """;

    [Fact]
    public async Task Job_on_two_coordinators_completes_with_one_live_attempt_per_task_at_a_time_one_success_and_one_bill_per_attempt()
    {
        var jobId = await FarmChecks.SubmitAsync(farm.First, "it-two-coordinators", ThreeShots);

        // Followed through the other replica: both serve the same farm.
        var status = await FarmChecks.WaitForJobAsync(farm.Second, jobId, "Succeeded", TimeSpan.FromMinutes(2), () => farm.Output);

        Assert.Equal(3, status.Shots.Count);
        await FarmChecks.AssertEveryFrameIsInTheVideoAsync(status, farm.StorageRoot);
        await using var db = farm.CreateDbContext();
        var (tasks, attempts, _) = await FarmChecks.AssertBilledOnceAsync(db, jobId);
        Assert.Equal(30, tasks.Count);
        Assert.Equal(["worker-1", "worker-2"], attempts.Where(a => a.WorkerId is not null).Select(a => a.WorkerId!).Distinct().Order(StringComparer.Ordinal));
        await FarmChecks.AssertNoErrorQueueMessagesAsync(farm.First);
        Assert.All(farm.Coordinators, c => Assert.False(c.HasExited, $"a coordinator exited:\n{farm.Output}"));
    }
}
