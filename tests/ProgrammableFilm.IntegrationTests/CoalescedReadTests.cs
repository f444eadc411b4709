using ProgrammableFilm.Coordinator;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The shared read's promise: every caller is answered by a read that started after its call.</summary>
public class CoalescedReadTests
{
    /// <summary>A read the test lets finish: its number in order of starting, once released.</summary>
    private sealed class HeldReads
    {
        private readonly List<TaskCompletionSource> _releases = [];

        public int Started { get; private set; }

        public async Task<int> ReadAsync(CancellationToken cancellationToken)
        {
            var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_releases)
            {
                _releases.Add(release);
                Started = _releases.Count;
            }

            var number = Started;
            await release.Task;
            return number;
        }

        public void Release(int number, Exception? failure = null)
        {
            lock (_releases)
            {
                if (failure is null)
                {
                    _releases[number - 1].SetResult();
                }
                else
                {
                    _releases[number - 1].SetException(failure);
                }
            }
        }
    }

    [Fact]
    public async Task Callers_that_arrive_during_a_read_share_the_next_read_and_not_the_one_under_way()
    {
        var reads = new HeldReads();
        var shared = new CoalescedRead<int>(reads.ReadAsync);
        var first = shared.ReadAsync(CancellationToken.None);
        var later = Enumerable.Range(0, 10).Select(_ => shared.ReadAsync(CancellationToken.None)).ToList();
        Assert.Equal(1, reads.Started);

        reads.Release(1);
        Assert.Equal(1, await first);
        await WaitUntilAsync(() => reads.Started == 2);
        Assert.All(later, answer => Assert.False(answer.IsCompleted));

        var afterThat = shared.ReadAsync(CancellationToken.None);
        reads.Release(2);
        Assert.Equal(Enumerable.Repeat(2, 10), await Task.WhenAll(later));
        await WaitUntilAsync(() => reads.Started == 3);
        reads.Release(3);
        Assert.Equal(3, await afterThat);
        Assert.Equal(3, reads.Started);
    }

    [Fact]
    public async Task A_failed_read_fails_only_its_callers_and_the_next_caller_reads_again()
    {
        var reads = new HeldReads();
        var shared = new CoalescedRead<int>(reads.ReadAsync);
        var failing = shared.ReadAsync(CancellationToken.None);
        reads.Release(1, new TimeoutException("database away"));
        Assert.Equal("database away", (await Assert.ThrowsAsync<TimeoutException>(() => failing)).Message);

        // The failed read's last step (seeing nobody waiting) may still be under way: the next read then starts there.
        var next = shared.ReadAsync(CancellationToken.None);
        await WaitUntilAsync(() => reads.Started == 2);
        reads.Release(2);
        Assert.Equal(2, await next);
    }

    [Fact]
    public async Task A_caller_that_gives_up_does_not_cancel_the_read_for_the_others()
    {
        var reads = new HeldReads();
        var shared = new CoalescedRead<int>(reads.ReadAsync);
        var running = shared.ReadAsync(CancellationToken.None);
        using var impatient = new CancellationTokenSource();
        var givesUp = shared.ReadAsync(impatient.Token);
        var waits = shared.ReadAsync(CancellationToken.None);

        reads.Release(1);
        Assert.Equal(1, await running);
        await WaitUntilAsync(() => reads.Started == 2);
        await impatient.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => givesUp);
        reads.Release(2);
        Assert.Equal(2, await waits);
    }

    [Fact]
    public async Task Each_key_has_reads_of_its_own_shared_only_by_that_keys_callers()
    {
        var jobA = new HeldReads();
        var jobB = new HeldReads();
        var shared = new CoalescedReads<char, int>((key, cancellationToken) => (key == 'a' ? jobA : jobB).ReadAsync(cancellationToken));
        var firstA = shared.ReadAsync('a', CancellationToken.None);
        var laterA = shared.ReadAsync('a', CancellationToken.None);
        var firstB = shared.ReadAsync('b', CancellationToken.None);
        Assert.Equal((1, 1), (jobA.Started, jobB.Started));

        // B's read is not held up by A's, nor joined to it.
        jobB.Release(1);
        Assert.Equal(1, await firstB);
        Assert.False(firstA.IsCompleted);

        jobA.Release(1);
        Assert.Equal(1, await firstA);
        await WaitUntilAsync(() => jobA.Started == 2);
        jobA.Release(2);
        Assert.Equal(2, await laterA);

        // A key whose reads are over starts afresh.
        var again = shared.ReadAsync('b', CancellationToken.None);
        await WaitUntilAsync(() => jobB.Started == 2);
        jobB.Release(2);
        Assert.Equal(2, await again);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the next read did not start within 10 s");
            await Task.Delay(5);
        }
    }
}
