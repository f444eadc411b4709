using MassTransit;
using Microsoft.Extensions.DependencyInjection;

namespace ProgrammableFilm.Messaging;

/// <summary>
/// Fault injection, on only with <c>Faults:DuplicateDelivery=true</c>: every message this process sends or publishes goes
/// to the broker twice with the same message id, request id, addresses and headers, the way an at-least-once broker
/// redelivers after a lost acknowledgement. Every consumer must turn the second copy into a no-op; <c>bench/faults.sh</c>
/// measures that they do.
/// </summary>
public static class DuplicateDelivery
{
    /// <summary>Marks the copy for whoever reads it (logs, tests).</summary>
    public const string CopyHeader = "PF-Fault-Duplicate";

    // The copy is sent from the observer of the original's send, so it would be observed and copied in turn; this flag
    // flows down the copy's send call to stop that.
    private static readonly AsyncLocal<bool> SendingCopy = new();

    /// <summary>
    /// Connects the observers that duplicate every outgoing message. Observers, not send filters: a send filter runs
    /// before the caller's pipe sets the request id and response address, so a copy made there is a request nobody can
    /// answer, which a real redelivery never is.
    /// </summary>
    public static void DeliverEveryMessageTwice(this IBusFactoryConfigurator transport, IRegistrationContext context)
    {
        var copier = new Copier(() => context.GetRequiredService<IBus>());
        transport.ConnectSendObserver(copier);
        transport.ConnectPublishObserver(copier);
    }

    private static async Task SendCopyAsync(Func<Task> send)
    {
        SendingCopy.Value = true;
        try
        {
            await send();
        }
        finally
        {
            SendingCopy.Value = false;
        }
    }

    /// <summary>
    /// The copy keeps the envelope: the same request id makes a duplicated request a second request the responder must
    /// refuse or answer identically, while the requester completes on whichever response arrives first.
    /// </summary>
    private static void CopyEnvelope(SendContext original, SendContext copy)
    {
        copy.MessageId = original.MessageId;
        copy.RequestId = original.RequestId;
        copy.CorrelationId = original.CorrelationId;
        copy.ConversationId = original.ConversationId;
        copy.InitiatorId = original.InitiatorId;
        copy.SourceAddress = original.SourceAddress;
        copy.ResponseAddress = original.ResponseAddress;
        copy.FaultAddress = original.FaultAddress;
        copy.TimeToLive = original.TimeToLive;
        copy.Durable = original.Durable;
        foreach (var header in original.Headers.GetAll())
        {
            copy.Headers.Set(header.Key, header.Value);
        }

        copy.Headers.Set(CopyHeader, "true");
    }

    /// <summary>Sends a copy of each sent message (commands, requests, responses) and publishes a copy of each event.</summary>
    private sealed class Copier(Func<IBus> bus) : ISendObserver, IPublishObserver
    {
        public async Task PostSend<T>(SendContext<T> context)
            where T : class
        {
            if (SendingCopy.Value || context.DestinationAddress is not { } destination)
            {
                return;
            }

            var endpoint = await bus().GetSendEndpoint(destination);
            await SendCopyAsync(() => endpoint.Send(context.Message, copy => CopyEnvelope(context, copy), context.CancellationToken));
        }

        public async Task PostPublish<T>(PublishContext<T> context)
            where T : class
        {
            if (SendingCopy.Value)
            {
                return;
            }

            await SendCopyAsync(() => bus().Publish(context.Message, copy => CopyEnvelope(context, copy), context.CancellationToken));
        }

        public Task PreSend<T>(SendContext<T> context)
            where T : class => Task.CompletedTask;

        public Task SendFault<T>(SendContext<T> context, Exception exception)
            where T : class => Task.CompletedTask;

        public Task PrePublish<T>(PublishContext<T> context)
            where T : class => Task.CompletedTask;

        public Task PublishFault<T>(PublishContext<T> context, Exception exception)
            where T : class => Task.CompletedTask;
    }
}
