using MassTransit;
using ProgrammableFilm.Contracts;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// Answers workers' claims, a batch of requests (each a bundle's attempts) at a time. Idempotency key: the attempt id;
/// a second claim of the same attempt by another worker is refused.
/// </summary>
public sealed class ClaimAttemptConsumer(TaskEvents events) : IConsumer<Batch<ClaimAttempts>>
{
    public async Task Consume(ConsumeContext<Batch<ClaimAttempts>> context)
    {
        var requests = context.Message.ToList();
        var claims = requests.Select(r => r.Message.Each().ToList()).ToList();
        var decisions = await events.ClaimAsync([.. claims.SelectMany(c => c)], context.CancellationToken);
        var next = 0;
        var answers = new List<Task>(requests.Count);
        foreach (var (request, bundle) in requests.Zip(claims))
        {
            var decided = bundle.Select(claim => (claim.AttemptId, Decision: decisions[next++])).ToList();
            answers.Add(request.RespondAsync(new AttemptClaimsDecided
            {
                Granted = [.. decided.Where(d => d.Decision.Granted).Select(d => d.AttemptId)],
                Refused = [.. decided.Where(d => !d.Decision.Granted).Select(d => new AttemptClaimRefused { AttemptId = d.AttemptId, Reason = d.Decision.Reason })],
            }));
        }

        await Task.WhenAll(answers);
    }
}

/// <summary>
/// Idempotency key: the attempt id; only the current attempt's success changes the task, the ledger bills it once.
/// Applied by group commit with the other reports of the moment (<see cref="SuccessGroupCommit"/>).
/// </summary>
public sealed class TaskSucceededConsumer(SuccessGroupCommit successes) : IConsumer<TasksSucceeded>
{
    public Task Consume(ConsumeContext<TasksSucceeded> context) => successes.ApplyAsync(context.Message.Reports);
}

/// <summary>Idempotency key: the attempt id; only the current attempt's failure changes the task, the ledger bills it once.</summary>
public sealed class TaskFailedConsumer(TaskEvents events) : IConsumer<TaskFailed>
{
    public Task Consume(ConsumeContext<TaskFailed> context) => events.FailedAsync(context.Message, context.CancellationToken);
}

/// <summary>Idempotency key: none needed; progress of a non-current attempt is ignored and the latest value wins.</summary>
public sealed class TaskProgressedConsumer(TaskEvents events) : IConsumer<TaskProgressed>
{
    public Task Consume(ConsumeContext<TaskProgressed> context) => events.ProgressAsync(context.Message, context.CancellationToken);
}

/// <summary>
/// Idempotency key: none needed; a heartbeat only moves leases forward and stores numbered log lines once. The
/// answer lists the attempts the worker must stop.
/// </summary>
public sealed class WorkerHeartbeatConsumer(TaskEvents events) : IConsumer<WorkerHeartbeat>
{
    public async Task Consume(ConsumeContext<WorkerHeartbeat> context) =>
        await context.RespondAsync(await events.HeartbeatAsync(context.Message, context.CancellationToken));
}

/// <summary>
/// Retries a message in memory, unacknowledged, long enough to ride out a database outage of a few minutes: the
/// event is applied when the database is back instead of landing in the <c>_error</c> queue. A concurrent duplicate
/// that hits the ledger's unique key and a busy SQLite database are handled the same way: on retry the handler sees
/// the committed state and does nothing twice. If the broker connection drops meanwhile, the message is redelivered.
/// </summary>
public sealed class EventRetryDefinition<TConsumer> : ConsumerDefinition<TConsumer>
    where TConsumer : class, IConsumer
{
    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<TConsumer> consumerConfigurator, IRegistrationContext context) =>
        endpointConfigurator.UseMessageRetry(Retry);

    /// <summary>
    /// About six and a half minutes of tries, at most two seconds apart: a job waits at most that long past the
    /// database's return for the events held meanwhile (ten seconds apart, the 60-s outage of bench/faults.sh ended
    /// 6–10 s before its job did). A try while the database is down is a refused connection, cheap at any rate.
    /// </summary>
    internal static void Retry(IRetryConfigurator retry) =>
        retry.Exponential(200, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(250));
}

/// <summary>
/// Successes arrive in bursts (every one-frame task of a shot, every worker): many messages are taken at once, so that
/// a group commit has them all. A group is retried as its messages are, as long as an event would be.
/// </summary>
public sealed class SuccessGroupDefinition : ConsumerDefinition<TaskSucceededConsumer>
{
    private const int InFlight = 256;

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<TaskSucceededConsumer> consumerConfigurator, IRegistrationContext context)
    {
        endpointConfigurator.PrefetchCount = InFlight;
        endpointConfigurator.ConcurrentMessageLimit = InFlight;
        endpointConfigurator.UseMessageRetry(EventRetryDefinition<TaskSucceededConsumer>.Retry);
    }
}

/// <summary>
/// Claims arrive from every worker for every bundle; the requests that arrive together (up to 100) are decided in one
/// transaction. The batch does not wait for more: its time limit is under the timer's millisecond resolution, so it
/// closes as soon as the timer runs. A 1-ms limit cost an idle worker about 2.5 ms of every claim (the timer fires
/// late), while at 500 tasks/s in bundles of 32 claims arrive a few dozen times a second and seldom meet anyway.
/// A request is retried only while its sender still waits (its timeout is under a minute): an unanswered claim is sent
/// again by the republish sweep.
/// </summary>
public sealed class ClaimBatchDefinition : ConsumerDefinition<ClaimAttemptConsumer>
{
    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<ClaimAttemptConsumer> consumerConfigurator, IRegistrationContext context)
    {
        consumerConfigurator.Options<BatchOptions>(batch => batch.SetMessageLimit(100).SetTimeLimit(TimeSpan.FromMilliseconds(0.1)).SetConcurrencyLimit(2));
        consumerConfigurator.UseMessageRetry(RequestRetry);
    }

    internal static void RequestRetry(IRetryConfigurator retry) => retry.Intervals(100, 500, 1000, 2000, 5000, 5000, 5000, 5000);
}

/// <summary>
/// Retries a request only while its sender still waits (its timeout is under a minute): an unanswered heartbeat is
/// sent again by the next beat.
/// </summary>
public sealed class RequestRetryDefinition<TConsumer> : ConsumerDefinition<TConsumer>
    where TConsumer : class, IConsumer
{
    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<TConsumer> consumerConfigurator, IRegistrationContext context) =>
        endpointConfigurator.UseMessageRetry(ClaimBatchDefinition.RequestRetry);
}
