using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Scheduling;

namespace ProgrammableFilm.Domain.Tests;

public sealed class BundlingTests
{
    private static readonly DateTime Start = new(2026, 12, 1, 12, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void One_frame_previz_tasks_fill_a_bundle_up_to_its_cap()
    {
        // procedural 64×64, one frame: about 23 ms by the prior, so a second holds 42 of them; the cap is 32.
        Assert.Equal(32, Bundling.Size("procedural", TaskKind.Keyframe, 64, 64, 1, 1, bundleSeconds: 1, maxBundle: 32));
        Assert.Equal(42, Bundling.Size("procedural", TaskKind.Keyframe, 64, 64, 1, 1, bundleSeconds: 1, maxBundle: 100));
    }

    [Fact]
    public void A_bundle_holds_about_the_configured_seconds_of_expected_work()
    {
        // diffusion 64×64 at 20 steps: 0.03 + 20 × 0.012 = 0.27 s a frame by the prior, so three to a second.
        Assert.Equal(3, Bundling.Size("diffusion", TaskKind.Keyframe, 64, 64, 20, 1, bundleSeconds: 1, maxBundle: 32));
        Assert.Equal(7, Bundling.Size("diffusion", TaskKind.Keyframe, 64, 64, 20, 1, bundleSeconds: 2, maxBundle: 32));
        Assert.Equal(1, Bundling.Size("diffusion", TaskKind.Segment, 64, 64, 20, 10, bundleSeconds: 1, maxBundle: 32));
    }

    [Fact]
    public void Long_tasks_and_a_farm_that_turned_bundling_off_send_each_attempt_alone()
    {
        Assert.Equal(1, Bundling.Size("diffusion", TaskKind.Segment, 512, 512, 30, 24, bundleSeconds: 1, maxBundle: 32));
        Assert.Equal(1, Bundling.Size("procedural", TaskKind.Keyframe, 64, 64, 1, 1, bundleSeconds: 0, maxBundle: 32));
        Assert.Equal(1, Bundling.Size("procedural", TaskKind.Keyframe, 64, 64, 1, 1, bundleSeconds: 1, maxBundle: 1));
    }

    [Fact]
    public void A_pools_room_is_in_messages_so_it_takes_a_bundles_worth_of_short_tasks_per_message()
    {
        var pool = new PoolCapacity("cpu", 2, 0, null);
        var shortTasks = Enumerable.Range(0, 100).Select(i => new ReadyTask(Guid.NewGuid(), "film", 1, 50, Start.AddSeconds(i), i, "procedural", 0, BundleSize: 16));
        var longTasks = Enumerable.Range(0, 100).Select(i => new ReadyTask(Guid.NewGuid(), "film", 1, 50, Start.AddSeconds(i), i, "diffusion", 0));

        Assert.Equal(32, FairShare.Plan(shortTasks, new Dictionary<string, int>(), new Dictionary<string, double>(), [pool]).Count);
        Assert.Equal(2, FairShare.Plan(longTasks, new Dictionary<string, int>(), new Dictionary<string, double>(), [pool]).Count);
    }

    [Fact]
    public void A_long_task_takes_a_whole_message_of_room_whatever_bundles_came_before_it()
    {
        var pool = new PoolCapacity("cpu", 1.5, 0, null);
        ReadyTask[] tasks =
        [
            .. Enumerable.Range(0, 8).Select(i => new ReadyTask(Guid.NewGuid(), "film", 0, 50, Start.AddSeconds(i), i, "procedural", 0, BundleSize: 8)),
            new ReadyTask(Guid.NewGuid(), "film", 1, 50, Start, 100, "diffusion", 0),
            new ReadyTask(Guid.NewGuid(), "film", 1, 50, Start.AddSeconds(1), 101, "diffusion", 0),
        ];

        // The preview lane's bundle of eight fills one message; the half message left takes one long task, not two.
        var plan = FairShare.Plan(tasks, new Dictionary<string, int>(), new Dictionary<string, double>(), [pool]);
        Assert.Equal(9, plan.Count);
        Assert.Equal(100, plan[^1].Task.FirstFrame);
    }
}
