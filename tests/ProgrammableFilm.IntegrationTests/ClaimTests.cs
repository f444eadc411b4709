using System.Collections.Concurrent;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Data.Entities;
using RabbitMQ.Client;
using RenderTaskMessage = ProgrammableFilm.Contracts.RenderTask;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The claim handshake under contention: only one worker may ever run an attempt.</summary>
public class ClaimTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task Of_many_simultaneous_claims_of_one_attempt_exactly_one_is_granted_and_the_attempt_records_that_worker()
    {
        var jobId = await _worker.SubmitAsync("it-claims");
        var attempt = (await _worker.WaitForAttemptsAsync(jobId, 3))["kf-00012"];
        var claimants = Enumerable.Range(0, 24).Select(i => $"claimant-{i:00}").ToList();

        var responses = await Task.WhenAll(claimants.Select(worker => _worker.ClaimAsync(attempt.Id, worker)));

        var granted = claimants.Where((_, i) => responses[i] is null).ToList();
        var winner = Assert.Single(granted);
        Assert.Equal(claimants.Count - 1, responses.Count(r => r is not null));

        await using var db = farm.CreateDbContext();
        var row = await db.Attempts.SingleAsync(a => a.Id == attempt.Id);
        Assert.Equal((AttemptState.Claimed, winner), (row.State, row.WorkerId));
        Assert.NotNull(row.ClaimedAt);
        var task = await db.Tasks.SingleAsync(t => t.Id == attempt.TaskId);
        Assert.Equal((RenderTaskState.Running, attempt.Id), (task.State, task.CurrentAttemptId));
        Assert.Equal(1, await db.Attempts.CountAsync(a => a.TaskId == attempt.TaskId));

        // A refused claimant must leave no trace: the fleet shows only the worker that runs something.
        Assert.Equal([winner], await db.Workers.Where(w => EF.Functions.Like(w.Id, "claimant-%")).Select(w => w.Id).ToListAsync());
    }

    [Fact]
    public async Task A_duplicated_claim_from_the_same_worker_is_granted_again_and_claims_once()
    {
        var jobId = await _worker.SubmitAsync("it-claims");
        var attempt = (await _worker.WaitForAttemptsAsync(jobId, 3))["kf-00012"];

        // Two copies of one request race; whichever answer reaches the worker first must not make it drop the work.
        var responses = await Task.WhenAll(_worker.ClaimAsync(attempt.Id, "twin"), _worker.ClaimAsync(attempt.Id, "twin"));
        var other = await _worker.ClaimAsync(attempt.Id, "stranger");

        Assert.All(responses, Assert.Null);
        Assert.NotNull(other);
        await using var db = farm.CreateDbContext();
        var row = await db.Attempts.SingleAsync(a => a.Id == attempt.Id);
        Assert.Equal((AttemptState.Claimed, "twin"), (row.State, row.WorkerId));
        Assert.Equal(1, await db.Attempts.CountAsync(a => a.TaskId == attempt.TaskId));
    }

    [Fact]
    public async Task A_claim_that_lost_a_race_is_refused_with_the_state_the_winner_left()
    {
        var jobId = await _worker.SubmitAsync("it-claims");
        var attempt = (await _worker.WaitForAttemptsAsync(jobId, 3))["kf-00023"];

        var responses = await Task.WhenAll(Enumerable.Range(0, 24).Select(i => _worker.ClaimAsync(attempt.Id, $"racer-{i:00}")));

        // The worker logs this reason; "attempt is Queued, not Queued" (the state read before the race was lost)
        // would send whoever reads it looking for a bug in the wrong place.
        var reasons = responses.OfType<string>().ToList();
        Assert.Equal(23, reasons.Count);
        Assert.All(reasons, reason => Assert.Equal("attempt is Claimed, not Queued", reason));
    }
}

/// <summary>A coordinator without workers that gives up on an unclaimed message after one second.</summary>
public sealed class FastRepublishFixture : FarmFixture
{
    protected override int WorkerCount => 0;

    protected override IReadOnlyDictionary<string, string> ExtraSettings => new Dictionary<string, string>
    {
        ["Coordinator:RepublishAfter"] = "00:00:01",
    };
}

/// <summary>
/// The database is the truth and the broker only delivery: an attempt whose message was lost (here: never taken) is
/// sent again, and the claim keeps the extra copies harmless.
/// </summary>
public class RepublishTests(FastRepublishFixture farm) : IClassFixture<FastRepublishFixture>
{
    private readonly WorkerDouble _worker = new(farm);

    [Fact]
    public async Task An_unclaimed_attempt_is_sent_again_its_republished_copy_is_claimed_once_and_a_claimed_attempt_is_not_sent_again()
    {
        // This test takes the pool's queue itself, as a worker would, and only counts what arrives.
        var deliveries = new ConcurrentQueue<RenderTaskMessage>();
        var endpoint = _worker.Bus.ConnectReceiveEndpoint($"{farm.QueuePrefix}render-cpu", configure =>
        {
            // Bind nothing to the RenderBundle exchange, which every farm on this broker shares.
            configure.ConfigureConsumeTopology = false;
            configure.Handler<RenderBundle>(context =>
            {
                foreach (var task in context.Message.Tasks)
                {
                    deliveries.Enqueue(task);
                }

                return Task.CompletedTask;
            });
        });
        await endpoint.Ready;
        try
        {
            var jobId = await _worker.SubmitAsync("it-republish");
            var attempts = await _worker.WaitForAttemptsAsync(jobId, 3);
            var target = attempts["kf-00012"];
            var other = attempts["kf-00023"];
            int Copies(Attempt attempt) => deliveries.Count(d => d.AttemptId == attempt.Id);

            await WaitUntilAsync(() => Copies(target) >= 2, "the unclaimed attempt to be sent twice");

            var copies = deliveries.Where(d => d.AttemptId == target.Id).ToList();
            Assert.All(copies, copy => Assert.Equal((target.TaskId, "keyframe", 12), (copy.TaskId, copy.Kind, Assert.Single(copy.Frames))));
            await using (var db = farm.CreateDbContext())
            {
                // Sending again is delivery only: the same attempt, no new one, and its published_at moved on.
                var row = await db.Attempts.SingleAsync(a => a.Id == target.Id);
                Assert.Equal((AttemptState.Queued, 1), (row.State, row.Number));
                Assert.True(row.PublishedAt > row.CreatedAt, $"published_at {row.PublishedAt:O} did not move past created_at {row.CreatedAt:O}");
                Assert.Equal(1, await db.Attempts.CountAsync(a => a.TaskId == target.TaskId));
            }

            var fromRepublished = await _worker.ClaimAsync(copies[1].AttemptId, "worker-late");
            var fromOriginal = await _worker.ClaimAsync(copies[0].AttemptId, "worker-early");
            Assert.True(fromRepublished is null, $"the claim from the republished copy was refused: {fromRepublished}");
            Assert.True(fromOriginal is not null, "the claim from the original copy was granted too");

            // Once claimed, the attempt is not sent again. The sweep may already have read it before the claim and
            // send that one copy; after three more rounds of the still-unclaimed attempt, nothing else may come.
            var targetAtClaim = Copies(target);
            var otherAtClaim = Copies(other);
            await WaitUntilAsync(() => Copies(other) >= otherAtClaim + 3, "three more rounds of the unclaimed attempt");
            Assert.InRange(Copies(target) - targetAtClaim, 0, 1);
            foreach (var late in deliveries.Where(d => d.AttemptId == target.Id).Skip(2))
            {
                Assert.True(await _worker.ClaimAsync(late.AttemptId, "worker-later") is not null, "a later copy was granted");
            }

            await using var check = farm.CreateDbContext();
            var claimed = await check.Attempts.SingleAsync(a => a.Id == target.Id);
            Assert.Equal((AttemptState.Claimed, "worker-late"), (claimed.State, claimed.WorkerId));
            Assert.Equal(RenderTaskState.Running, (await check.Tasks.SingleAsync(t => t.Id == target.TaskId)).State);
        }
        finally
        {
            await endpoint.StopAsync();
        }
    }

    [Fact]
    public async Task A_message_waiting_in_its_queue_is_not_sent_again_and_one_lost_from_it_is()
    {
        var queue = $"{farm.QueuePrefix}render-cpu";
        await using var connection = await new ConnectionFactory { Uri = new Uri(TestEnvironment.RabbitMq) }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        async Task<uint> ReadyAsync() => (await channel.QueueDeclarePassiveAsync(queue)).MessageCount;
        var jobId = await _worker.SubmitAsync("it-waiting");
        var attempts = (await _worker.WaitForAttemptsAsync(jobId, 3)).Values.Select(a => a.Id).ToList();
        async Task<List<Attempt>> RowsAsync()
        {
            await using var db = farm.CreateDbContext();
            return await db.Attempts.AsNoTracking().Where(a => attempts.Contains(a.Id)).ToListAsync();
        }

        // Nobody takes the queue. Past the 1-s republish age, through two sweeps (every 5 s), the messages wait
        // their turn: none is sent again, however old.
        await Task.Delay(TimeSpan.FromSeconds(2));
        var waiting = await ReadyAsync();
        Assert.True(waiting > 0, "the job's messages are not in its pool's queue");
        await Task.Delay(TimeSpan.FromSeconds(11));
        Assert.Equal(waiting, await ReadyAsync());
        Assert.All(await RowsAsync(), row => Assert.Equal((AttemptState.Queued, row.CreatedAt), (row.State, row.PublishedAt)));

        // Lost: the queue emptied behind the farm's back (a broker that lost its messages). The next sweeps send
        // every one of them again.
        await channel.QueuePurgeAsync(queue);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await RowsAsync()).Any(row => row.PublishedAt == row.CreatedAt))
        {
            Assert.True(DateTime.UtcNow < deadline, "the lost messages were not sent again within 30 s");
            await Task.Delay(200);
        }

        Assert.True(await ReadyAsync() > 0, "the messages sent again are not in the queue");
        Assert.All(await RowsAsync(), row => Assert.Equal((AttemptState.Queued, 1), (row.State, row.Number)));
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out after 30 s waiting for {what}");
            await Task.Delay(50);
        }
    }
}
