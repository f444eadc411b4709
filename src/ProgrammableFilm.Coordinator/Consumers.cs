using MassTransit;
using ProgrammableFilm.Contracts;

namespace ProgrammableFilm.Coordinator;

/// <summary>Answers a worker's claim. Idempotency key: the attempt id; a second claim of the same attempt is refused.</summary>
public sealed class ClaimAttemptConsumer(TaskEvents events) : IConsumer<ClaimAttempt>
{
    public async Task Consume(ConsumeContext<ClaimAttempt> context)
    {
        var decision = await events.ClaimAsync(context.Message, context.CancellationToken);
        if (decision.Granted)
        {
            await context.RespondAsync(new AttemptClaimGranted { AttemptId = context.Message.AttemptId });
        }
        else
        {
            await context.RespondAsync(new AttemptClaimRefused { AttemptId = context.Message.AttemptId, Reason = decision.Reason });
        }
    }
}

/// <summary>Idempotency key: the attempt id; only the current attempt's success changes the task, the ledger bills it once.</summary>
public sealed class TaskSucceededConsumer(TaskEvents events) : IConsumer<TaskSucceeded>
{
    public Task Consume(ConsumeContext<TaskSucceeded> context) => events.SucceededAsync(context.Message, context.CancellationToken);
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
/// Retries event handling a few times: a concurrent duplicate hits the ledger's unique key, and SQLite may report
/// a busy database; on retry the handler sees the committed state and does nothing twice.
/// </summary>
public sealed class TaskEventsConsumerDefinition<TConsumer> : ConsumerDefinition<TConsumer>
    where TConsumer : class, IConsumer
{
    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<TConsumer> consumerConfigurator, IRegistrationContext context)
    {
        endpointConfigurator.UseMessageRetry(retry => retry.Intervals(50, 200, 500, 1000, 2000));
    }
}
