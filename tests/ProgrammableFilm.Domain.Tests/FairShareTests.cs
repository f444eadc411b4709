using ProgrammableFilm.Domain.Scheduling;

namespace ProgrammableFilm.Domain.Tests;

public sealed class FairShareTests
{
    private static readonly DateTime Start = new(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc);

    private static IEnumerable<ReadyTask> Backlog(string project, int count, int lane = 1, int priority = 50, string engine = "procedural", long memory = 0, int ageOffset = 0) =>
        Enumerable.Range(0, count).Select(i => new ReadyTask(Guid.NewGuid(), project, lane, priority, Start.AddSeconds(ageOffset + i), i, engine, memory));

    private static readonly PoolCapacity Cpu = new("cpu", 100, 0, null);

    [Fact]
    public void Two_saturating_projects_with_weights_three_to_one_share_the_room_three_to_one()
    {
        var plan = FairShare.Plan([.. Backlog("film-a", 500), .. Backlog("film-b", 500)], new Dictionary<string, int>(), new Dictionary<string, double> { ["film-a"] = 3, ["film-b"] = 1 }, [Cpu]);

        Assert.Equal(100, plan.Count);
        Assert.Equal(75, plan.Count(p => p.Task.Project == "film-a"));
    }

    [Fact]
    public void A_project_given_fewer_candidates_than_its_share_holds_the_rest_of_the_room_for_the_next_pass()
    {
        var weights = new Dictionary<string, double> { ["film-a"] = 3, ["film-b"] = 1 };
        var candidates = new List<ReadyTask>([.. Backlog("film-a", 50), .. Backlog("film-b", 50)]);

        var filled = FairShare.Plan(candidates, new Dictionary<string, int>(), weights, [Cpu]);
        var held = FairShare.Plan(candidates, new Dictionary<string, int>(), weights, [Cpu], new HashSet<string> { "film-a", "film-b" });

        // Each job's read gave it half of the room: filling the room from both would make the weights 1:1.
        Assert.Equal(50, filled.Count(p => p.Task.Project == "film-a"));
        Assert.Equal(50, filled.Count(p => p.Task.Project == "film-b"));
        Assert.Equal(50, held.Count(p => p.Task.Project == "film-a"));
        Assert.InRange(held.Count(p => p.Task.Project == "film-b"), 16, 17);
    }

    [Fact]
    public void A_project_cut_short_whose_tasks_fit_no_pool_does_not_hold_back_the_others()
    {
        var weights = new Dictionary<string, double> { ["film-a"] = 3, ["film-b"] = 1 };
        var plan = FairShare.Plan(
            [.. Backlog("film-a", 50, engine: "diffusion"), .. Backlog("film-b", 50)],
            new Dictionary<string, int>(),
            weights,
            [Cpu with { Engines = new HashSet<string> { "procedural" } }],
            new HashSet<string> { "film-a" });

        Assert.Equal(50, plan.Count(p => p.Task.Project == "film-b"));
    }

    [Fact]
    public void Live_attempts_count_against_a_project_so_the_share_holds_over_passes()
    {
        var live = new Dictionary<string, int> { ["film-a"] = 30, ["film-b"] = 0 };
        var plan = FairShare.Plan([.. Backlog("film-a", 50), .. Backlog("film-b", 50)], live, new Dictionary<string, double> { ["film-a"] = 3, ["film-b"] = 1 }, [Cpu with { Room = 10 }]);

        // 30 live for a against 0 for b: b catches up to its quarter (10 of 40) before a gets more.
        Assert.All(plan, p => Assert.Equal("film-b", p.Task.Project));
    }

    [Fact]
    public void With_room_for_ten_attempts_the_credit_makes_up_what_whole_attempts_cannot_give_three_to_one()
    {
        // Ten live attempts ask for 7.5 and 2.5: by occupancy alone the split settles on 7 and 3.
        Assert.InRange(OccupancyShareOfA(credit: null), 0.69, 0.71);
        Assert.InRange(OccupancyShareOfA(new ShareCredit(TimeSpan.FromSeconds(2))), 0.74, 0.76);
    }

    /// <summary>
    /// Ten slots kept full by two projects with weights 3:1: every 50 ms one live attempt, chosen at random, ends and
    /// the plan fills its slot. Returns the first project's part of the live attempts over ten simulated minutes.
    /// </summary>
    private static double OccupancyShareOfA(ShareCredit? credit)
    {
        var weights = new Dictionary<string, double> { ["film-a"] = 3, ["film-b"] = 1 };
        var contending = new HashSet<string> { "film-a", "film-b" };
        var step = TimeSpan.FromMilliseconds(50);
        var random = new Random(7);
        var live = new List<string>([.. Enumerable.Repeat("film-a", 5), .. Enumerable.Repeat("film-b", 5)]);
        long heldByA = 0, held = 0;
        IReadOnlyDictionary<string, double>? credits = null;
        for (var i = 0; i < 12_000; i++)
        {
            live.RemoveAt(random.Next(live.Count));
            var plan = FairShare.Plan([.. Backlog("film-a", 2), .. Backlog("film-b", 2)], Occupancy(live), weights, [Cpu with { Room = 1 }], credit: credits);
            live.Add(Assert.Single(plan).Task.Project);
            credits = credit?.Update(Occupancy(live), contending, weights, step);
            heldByA += live.Count(p => p == "film-a");
            held += live.Count;
        }

        return (double)heldByA / held;
    }

    private static Dictionary<string, int> Occupancy(List<string> live) =>
        live.GroupBy(p => p).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    [Fact]
    public void A_project_catching_up_by_whole_attempts_earns_no_credit()
    {
        var credit = new ShareCredit(TimeSpan.FromSeconds(1));
        var weights = new Dictionary<string, double> { ["film-a"] = 3, ["film-b"] = 1 };

        var catchingUp = new Dictionary<string, int> { ["film-a"] = 12 };
        credit.Update(catchingUp, new HashSet<string> { "film-a", "film-b" }, weights, TimeSpan.Zero);
        var owed = credit.Update(catchingUp, new HashSet<string> { "film-a", "film-b" }, weights, TimeSpan.FromSeconds(10));

        Assert.Equal(0, owed.GetValueOrDefault("film-b"));
    }

    [Fact]
    public void A_project_with_nothing_ready_drops_its_credit()
    {
        var credit = new ShareCredit(TimeSpan.FromSeconds(1));
        var weights = new Dictionary<string, double> { ["film-a"] = 3, ["film-b"] = 1 };
        var live = new Dictionary<string, int> { ["film-a"] = 7, ["film-b"] = 3 };

        credit.Update(live, new HashSet<string> { "film-a", "film-b" }, weights, TimeSpan.Zero);
        var owed = credit.Update(live, new HashSet<string> { "film-a", "film-b" }, weights, TimeSpan.FromSeconds(10));
        Assert.Equal(1, owed["film-a"]);
        Assert.Equal(-1, owed["film-b"]);

        var later = credit.Update(live, new HashSet<string> { "film-b" }, weights, TimeSpan.FromSeconds(1));
        Assert.False(later.ContainsKey("film-a"));
        Assert.Equal(-1, later["film-b"]);
    }

    [Fact]
    public void A_project_alone_bursts_into_the_whole_fleet()
    {
        var plan = FairShare.Plan(Backlog("film-b", 500), new Dictionary<string, int> { ["film-a"] = 0 }, new Dictionary<string, double> { ["film-a"] = 3, ["film-b"] = 1 }, [Cpu]);

        Assert.Equal(100, plan.Count);
    }

    [Fact]
    public void The_preview_lane_goes_before_any_batch_work_whatever_the_share()
    {
        var plan = FairShare.Plan([.. Backlog("film-a", 500, lane: 1), .. Backlog("film-b", 1, lane: 0, ageOffset: 10_000)], new Dictionary<string, int> { ["film-b"] = 1000 }, new Dictionary<string, double>(), [Cpu with { Room = 1 }]);

        Assert.Equal("film-b", Assert.Single(plan).Task.Project);
    }

    [Fact]
    public void A_queue_full_of_batch_work_still_takes_preview_tasks_and_no_more_batch_work()
    {
        var full = Cpu with { Room = 0, QueuedByLane = new Dictionary<int, double> { [1] = 16 } };
        var preview = Backlog("film-b", 3, lane: 0).ToList();
        var plan = FairShare.Plan([.. Backlog("film-a", 50, lane: 1), .. preview], new Dictionary<string, int> { ["film-a"] = 16 }, new Dictionary<string, double>(), [full]);

        Assert.Equal(preview.Select(t => t.Id), plan.Select(p => p.Task.Id));
    }

    [Fact]
    public void Preview_tasks_fill_a_queue_only_up_to_its_room_counting_the_preview_messages_already_in_it()
    {
        // Room for 16 messages: 15 preview and 3 batch are queued, so a preview task has room for one more.
        var crowded = Cpu with { Room = 16 - 18, QueuedByLane = new Dictionary<int, double> { [0] = 15, [1] = 3 } };
        var plan = FairShare.Plan([.. Backlog("film-b", 5, lane: 0), .. Backlog("film-a", 5, lane: 1)], new Dictionary<string, int>(), new Dictionary<string, double>(), [crowded]);

        Assert.Equal(0, Assert.Single(plan).Task.Lane);
    }

    [Fact]
    public void Within_a_project_priority_then_age_decides()
    {
        var old = Backlog("film-a", 1, priority: 10).Single();
        var urgent = Backlog("film-a", 1, priority: 90, ageOffset: 100).Single();
        var plan = FairShare.Plan([old, urgent], new Dictionary<string, int>(), new Dictionary<string, double>(), [Cpu with { Room = 1 }]);

        Assert.Equal(urgent.Id, Assert.Single(plan).Task.Id);
    }

    [Fact]
    public void A_task_goes_to_the_smallest_pool_it_fits_and_never_to_one_too_small()
    {
        var small = new PoolCapacity("gpu-16g", 10, 16L << 30, null);
        var large = new PoolCapacity("gpu-80g", 10, 80L << 30, null);
        var light = Backlog("film-a", 1, engine: "diffusion", memory: 1L << 30).Single();
        var heavy = Backlog("film-a", 1, engine: "diffusion", memory: 40L << 30, ageOffset: 5).Single();
        var huge = Backlog("film-a", 1, engine: "diffusion", memory: 100L << 30, ageOffset: 9).Single();

        var plan = FairShare.Plan([light, heavy, huge], new Dictionary<string, int>(), new Dictionary<string, double>(), [large, small]);

        Assert.Equal("gpu-16g", plan.Single(p => p.Task.Id == light.Id).Pool);
        Assert.Equal("gpu-80g", plan.Single(p => p.Task.Id == heavy.Id).Pool);
        Assert.DoesNotContain(plan, p => p.Task.Id == huge.Id);
    }

    [Fact]
    public void A_pool_without_the_task_engine_is_passed_over()
    {
        var previz = new PoolCapacity("previz", 10, 0, new HashSet<string> { "procedural" });
        var task = Backlog("film-a", 1, engine: "diffusion").Single();

        Assert.Empty(FairShare.Plan([task], new Dictionary<string, int>(), new Dictionary<string, double>(), [previz]));
    }

    [Fact]
    public void Diffusion_needs_more_memory_than_procedural_and_more_for_bigger_frames()
    {
        Assert.True(TaskRequirements.MinimumMemoryBytes("diffusion", 64, 64, 1) > TaskRequirements.MinimumMemoryBytes("procedural", 64, 64, 1));
        Assert.True(TaskRequirements.MinimumMemoryBytes("diffusion", 1920, 1080, 8) > TaskRequirements.MinimumMemoryBytes("diffusion", 640, 360, 8));
    }
}
