using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>One request as the receiver got it.</summary>
public sealed record ReceivedWebhook(string Path, IReadOnlyDictionary<string, string> Headers, byte[] Body, DateTimeOffset At)
{
    public string Text => Encoding.UTF8.GetString(Body);
}

/// <summary>
/// A real HTTP receiver on 127.0.0.1 (HttpListener): records every request and answers each path with the status
/// codes it is told, in order (then 200), so a test can make it fail a few times before it succeeds.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentDictionary<string, ConcurrentQueue<int>> _answers = new(StringComparer.Ordinal);
    private readonly Task _loop;

    public WebhookReceiver()
    {
        Port = TestEnvironment.FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    public int Port { get; }

    public ConcurrentQueue<ReceivedWebhook> Received { get; } = new();

    public string Url(string path) => $"http://127.0.0.1:{Port}/{path}";

    /// <summary>The next requests to <paramref name="path"/> get these status codes, in order.</summary>
    public void Answer(string path, params int[] statusCodes) => _answers[path] = new ConcurrentQueue<int>(statusCodes);

    public IReadOnlyList<ReceivedWebhook> At(string path) => [.. Received.Where(r => r.Path == path)];

    public async Task<IReadOnlyList<ReceivedWebhook>> WaitForAsync(string path, int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (At(path).Count < count)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{path}: {At(path).Count} of {count} requests within {timeout}: {string.Join('\n', At(path).Select(r => r.Text))}");
            }

            await Task.Delay(100);
        }

        return At(path);
    }

    /// <summary>
    /// A receiver's check, written from docs/webhooks.md and independent of the farm's code: HMAC-SHA256 with the
    /// secret over "{t}.{body}", compared in constant time, and a timestamp within five minutes.
    /// </summary>
    public static bool Verify(string secret, ReceivedWebhook request)
    {
        var fields = request.Headers["PFilm-Signature"].Split(',').Select(p => p.Split('=', 2)).ToLookup(p => p[0], p => p[1]);
        var t = fields["t"].Single();
        if (Math.Abs(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - long.Parse(t, System.Globalization.CultureInfo.InvariantCulture)) > 300)
        {
            return false;
        }

        byte[] signed = [.. Encoding.UTF8.GetBytes(t + "."), .. request.Body];
        var expected = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed);
        return fields["v1"].Any(v => CryptographicOperations.FixedTimeEquals(Convert.FromHexString(v), expected));
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            var path = context.Request.Url!.AbsolutePath.TrimStart('/');
            var headers = context.Request.Headers.AllKeys.OfType<string>().ToDictionary(k => k, k => context.Request.Headers[k]!, StringComparer.OrdinalIgnoreCase);
            Received.Enqueue(new ReceivedWebhook(path, headers, body.ToArray(), DateTimeOffset.UtcNow));
            context.Response.StatusCode = _answers.TryGetValue(path, out var answers) && answers.TryDequeue(out var status) ? status : 200;
            context.Response.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _loop;
    }
}
