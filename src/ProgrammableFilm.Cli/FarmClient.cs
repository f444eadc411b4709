using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;

namespace ProgrammableFilm.Cli;

/// <summary>The farm refused the key (401: missing, unknown, expired or revoked) or its role (403).</summary>
public sealed class AccessDeniedException(string message) : Exception(message);

/// <summary>
/// HTTP to a farm with the caller's API key on every request. A 401 or 403 ends the command (exit code 7) wherever
/// it happens; a 429 is waited out as the farm's <c>Retry-After</c> says, a few times, so that a CI job sharing a
/// key with others slows down instead of failing. A read the farm answers 503 (its database restarting or down for a
/// minute) is asked again for up to <see cref="UnavailableFor"/>, and so is a read the farm does not take once it has
/// answered this command (its API restarting), so that a CI job waiting on a render outlives both; a write is not
/// repeated (the farm may have done it), its 503 is the command's error.
/// </summary>
public static class FarmClient
{
    public const string ApiKeyVariable = "PFILM_API_KEY";

    /// <summary>How long a read waits out a farm that says it is unavailable.</summary>
    public static readonly TimeSpan UnavailableFor = TimeSpan.FromMinutes(2);

    /// <summary><paramref name="timeout"/> bounds each request; waiting out a 429 or a 503 is not counted in it.</summary>
    public static HttpClient Create(Uri server, string? apiKey, TimeSpan timeout)
    {
        var http = new HttpClient(new AccessHandler(timeout) { InnerHandler = new HttpClientHandler() }) { BaseAddress = server, Timeout = Timeout.InfiniteTimeSpan };
        if (apiKey is { Length: > 0 })
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return http;
    }

    private sealed class AccessHandler(TimeSpan timeout) : DelegatingHandler
    {
        private const int MaxWaits = 5;
        private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);
        private static readonly TimeSpan UnavailableWait = TimeSpan.FromSeconds(5);
        private static readonly TimeSpan UnreachableWait = TimeSpan.FromSeconds(1);

        /// <summary>
        /// Whether this farm has answered this command before: a connection refused afterwards is the farm restarting
        /// (a deploy, a lost node), not a wrong address, which the first request reports at once.
        /// </summary>
        private bool _answered;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var unavailableUntil = DateTime.UtcNow + UnavailableFor;
            var throttled = 0;
            var toldUnavailable = false;
            while (true)
            {
                HttpResponseMessage response;
                try
                {
                    response = await SendOnceAsync(request, cancellationToken);
                    _answered = true;
                }
                catch (HttpRequestException e) when (e.InnerException is SocketException or IOException && _answered && IsRead(request) && DateTime.UtcNow < unavailableUntil)
                {
                    if (!toldUnavailable)
                    {
                        Console.Error.WriteLine($"pfilm: lost the farm ({e.Message}). Asking again for up to {UnavailableFor.TotalMinutes:0} minutes.");
                        toldUnavailable = true;
                    }

                    await Task.Delay(UnreachableWait, cancellationToken);
                    continue;
                }

                if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                {
                    var problem = await Commands.ProblemText(response, cancellationToken);
                    response.Dispose();
                    throw new AccessDeniedException(request.Headers.Authorization is null && response.StatusCode == HttpStatusCode.Unauthorized
                        ? $"the farm needs an API key: set {ApiKeyVariable} or pass --api-key ({problem})"
                        : $"the farm refused the API key: {problem}");
                }

                var wait = response.StatusCode switch
                {
                    HttpStatusCode.TooManyRequests when ++throttled <= MaxWaits => response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(throttled),
                    HttpStatusCode.ServiceUnavailable when IsRead(request) && DateTime.UtcNow < unavailableUntil => response.Headers.RetryAfter?.Delta ?? UnavailableWait,
                    _ => (TimeSpan?)null,
                };
                if (wait is null)
                {
                    return response;
                }

                if (response.StatusCode == HttpStatusCode.ServiceUnavailable && !toldUnavailable)
                {
                    Console.Error.WriteLine($"pfilm: {await Commands.ProblemText(response, cancellationToken)} Asking again for up to {UnavailableFor.TotalMinutes:0} minutes.");
                    toldUnavailable = true;
                }

                response.Dispose();
                await Task.Delay(wait < MaxWait ? wait.Value : MaxWait, cancellationToken);
            }
        }

        private static bool IsRead(HttpRequestMessage request) => request.Method == HttpMethod.Get || request.Method == HttpMethod.Head;

        /// <summary>A request the farm does not answer in time is the server's failure, not the caller's cancel.</summary>
        private async Task<HttpResponseMessage> SendOnceAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(timeout);
            try
            {
                return await base.SendAsync(request, limit.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new HttpRequestException($"{request.Method} {request.RequestUri?.GetLeftPart(UriPartial.Path)}: no answer within {timeout.TotalSeconds:0} s");
            }
        }
    }
}
