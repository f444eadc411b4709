using ProgrammableFilm.Domain.Scheduling;

namespace ProgrammableFilm.Domain.Tests;

public class FailurePolicyTests
{
    private static readonly TimeSpan Base = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Max = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(0, 2)]
    [InlineData(1, 4)]
    [InlineData(2, 8)]
    [InlineData(5, 60)]
    [InlineData(40, 60)]
    public void Transient_failures_back_off_exponentially_up_to_the_cap(int failuresBefore, int seconds)
    {
        var decision = FailurePolicy.Decide(FailureClass.Transient, failuresBefore, retries: 100, maxFrameBatch: null, frames: 8, Base, Max, "reset");

        Assert.Equal(new FailureDecision.Retry(TimeSpan.FromSeconds(seconds), null), decision);
    }

    [Fact]
    public void A_task_out_of_retries_fails_and_says_how_many_were_tried()
    {
        var decision = FailurePolicy.Decide(FailureClass.Transient, failuresBefore: 3, retries: 3, null, 8, Base, Max, "kf-00012 (transient): reset");

        Assert.Equal(new FailureDecision.Fail("kf-00012 (transient): reset (gave up after 3 retries)"), decision);
    }

    [Fact]
    public void No_retries_fails_at_the_first_failure_with_the_plain_reason()
    {
        Assert.Equal(new FailureDecision.Fail("reset"), FailurePolicy.Decide(FailureClass.Transient, 0, retries: 0, null, 8, Base, Max, "reset"));
    }

    [Fact]
    public void Fatal_fails_at_once_whatever_the_retries()
    {
        Assert.Equal(new FailureDecision.Fail("bad"), FailurePolicy.Decide(FailureClass.Fatal, 0, retries: 10, null, 8, Base, Max, "bad"));
    }

    [Theory]
    [InlineData(null, 11, 5)]
    [InlineData(5, 11, 2)]
    [InlineData(2, 11, 1)]
    public void Out_of_memory_retries_at_once_with_half_the_batch(int? batch, int frames, int expected)
    {
        Assert.Equal(new FailureDecision.Retry(TimeSpan.Zero, expected), FailurePolicy.Decide(FailureClass.OutOfMemory, 0, 3, batch, frames, Base, Max, "oom"));
    }

    [Fact]
    public void Out_of_memory_with_one_frame_per_batch_fails_with_the_reason()
    {
        var decision = FailurePolicy.Decide(FailureClass.OutOfMemory, 0, 3, maxFrameBatch: 1, frames: 11, Base, Max, "oom");

        Assert.Equal(new FailureDecision.Fail("oom (out of memory even one frame at a time)"), decision);
    }

    [Fact]
    public void A_cancelled_attempt_leaves_its_task_alone()
    {
        Assert.IsType<FailureDecision.Ignore>(FailurePolicy.Decide(FailureClass.Cancelled, 0, 3, null, 8, Base, Max, "stopped"));
    }

    [Theory]
    [InlineData("transient", FailureClass.Transient)]
    [InlineData("out-of-memory", FailureClass.OutOfMemory)]
    [InlineData("cancelled", FailureClass.Cancelled)]
    [InlineData("fatal", FailureClass.Fatal)]
    [InlineData("something new", FailureClass.Fatal)]
    public void Unknown_classifications_are_treated_as_fatal(string text, FailureClass expected)
    {
        Assert.Equal(expected, FailurePolicy.Parse(text));
    }

    [Fact]
    public void A_blocked_worker_is_refused_only_while_its_block_is_fresh_and_someone_else_can_work()
    {
        var blockedAt = new DateTime(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc);
        var forgiveAfter = TimeSpan.FromMinutes(10);

        Assert.True(WorkerBlocklist.Refuses(blockedAt, blockedAt.AddMinutes(5), forgiveAfter, otherEligibleWorkers: 1));
        Assert.False(WorkerBlocklist.Refuses(blockedAt, blockedAt.AddMinutes(5), forgiveAfter, otherEligibleWorkers: 0));
        Assert.False(WorkerBlocklist.Refuses(blockedAt, blockedAt.AddMinutes(11), forgiveAfter, otherEligibleWorkers: 3));
        Assert.False(WorkerBlocklist.Refuses(null, blockedAt, forgiveAfter, otherEligibleWorkers: 3));
        Assert.False(WorkerBlocklist.Blocks(2, threshold: 3));
        Assert.True(WorkerBlocklist.Blocks(3, threshold: 3));
        Assert.False(WorkerBlocklist.Blocks(30, threshold: 0));
    }

    [Fact]
    public void Out_of_memory_with_a_bigger_pool_live_moves_the_task_there_with_its_batch_as_it_was()
    {
        Assert.Equal(new FailureDecision.Retry(TimeSpan.Zero, 1), FailurePolicy.Decide(FailureClass.OutOfMemory, 0, 3, maxFrameBatch: 1, frames: 11, Base, Max, "oom", biggerPoolLive: true));
    }
}
