using MassTransit;

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

    // The filters run before the caller's own pipe sets the copy's headers, so a header cannot tell them that the
    // message in hand is the copy; this flag flows down the copy's send call instead.
    private static readonly AsyncLocal<bool> SendingCopy = new();

    /// <summary>Adds the send and publish filters that duplicate every outgoing message.</summary>
    public static void DeliverEveryMessageTwice(this IBusFactoryConfigurator transport, IRegistrationContext context)
    {
        transport.UseSendFilter(typeof(DuplicateSendFilter<>), context);
        transport.UsePublishFilter(typeof(DuplicatePublishFilter<>), context);
    }

    internal static bool IsCopy => SendingCopy.Value;

    internal static async Task SendCopyAsync(Func<Task> send)
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
    internal static void CopyEnvelope(SendContext original, SendContext copy)
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
}

/// <summary>
/// Sends a copy of each sent message (commands, claim requests, responses). A send filter only prepares the message:
/// the transport writes the original after the pipe returns, so the copy is a second send through the bus.
/// </summary>
public sealed class DuplicateSendFilter<T>(IBus bus) : IFilter<SendContext<T>>
    where T : class
{
    public async Task Send(SendContext<T> context, IPipe<SendContext<T>> next)
    {
        await next.Send(context);
        if (DuplicateDelivery.IsCopy || context.DestinationAddress is not { } destination)
        {
            return;
        }

        var endpoint = await bus.GetSendEndpoint(destination);
        await DuplicateDelivery.SendCopyAsync(() => endpoint.Send(context.Message, copy => DuplicateDelivery.CopyEnvelope(context, copy), context.CancellationToken));
    }

    public void Probe(ProbeContext context) => context.CreateFilterScope("duplicateDelivery");
}

/// <summary>Publishes a copy of each published event, so every subscriber receives it twice.</summary>
public sealed class DuplicatePublishFilter<T>(IBus bus) : IFilter<PublishContext<T>>
    where T : class
{
    public async Task Send(PublishContext<T> context, IPipe<PublishContext<T>> next)
    {
        await next.Send(context);
        if (DuplicateDelivery.IsCopy)
        {
            return;
        }

        await DuplicateDelivery.SendCopyAsync(() => bus.Publish(context.Message, copy => DuplicateDelivery.CopyEnvelope(context, copy), context.CancellationToken));
    }

    public void Probe(ProbeContext context) => context.CreateFilterScope("duplicateDelivery");
}
