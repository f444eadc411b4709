using System.Net;
using System.Net.Sockets;
using ProgrammableFilm.Domain.Webhooks;

namespace ProgrammableFilm.Coordinator.Webhooks;

/// <summary>A receiver's address was refused by <see cref="WebhookTargets"/> when the delivery connected.</summary>
public sealed class WebhookTargetDeniedException(string message) : IOException(message);

/// <summary>
/// The HTTP client deliveries use. Its connections go only to addresses the target policy allows, checked on the
/// address actually connected to (a host that resolved to a public address when subscribed may resolve to the
/// metadata service later). No redirects (a 3xx is a failed attempt: a redirect could point anywhere) and no proxy
/// (the check would see the proxy's address, not the receiver's).
/// </summary>
public sealed class WebhookHttp : IDisposable
{
    public WebhookHttp(CoordinatorOptions options)
    {
        var targets = options.Webhooks.Targets;
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectTimeout = options.Webhooks.Timeout,
            ConnectCallback = async (context, cancellationToken) =>
            {
                var host = context.DnsEndPoint.Host;
                var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken);
                var (allowed, refusal) = targets.Filter(addresses);
                if (refusal is not null)
                {
                    throw new WebhookTargetDeniedException($"{host}: {refusal}");
                }

                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync([.. allowed], context.DnsEndPoint.Port, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        Client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        Client.DefaultRequestHeaders.UserAgent.ParseAdd("ProgrammableFilm-Webhooks/1");
    }

    public HttpClient Client { get; }

    public void Dispose() => Client.Dispose();
}
