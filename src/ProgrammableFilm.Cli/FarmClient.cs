using System.Net;
using System.Net.Http.Headers;

namespace ProgrammableFilm.Cli;

/// <summary>The farm refused the key (401: missing, unknown, expired or revoked) or its role (403).</summary>
public sealed class AccessDeniedException(string message) : Exception(message);

/// <summary>
/// HTTP to a farm with the caller's API key on every request. A 401 or 403 ends the command (exit code 7) wherever
/// it happens; a 429 is waited out as the farm's <c>Retry-After</c> says, a few times, so that a CI job sharing a
/// key with others slows down instead of failing.
/// </summary>
public static class FarmClient
{
    public const string ApiKeyVariable = "PFILM_API_KEY";

    public static HttpClient Create(Uri server, string? apiKey, TimeSpan timeout)
    {
        var http = new HttpClient(new AccessHandler { InnerHandler = new HttpClientHandler() }) { BaseAddress = server, Timeout = timeout };
        if (apiKey is { Length: > 0 })
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return http;
    }

    private sealed class AccessHandler : DelegatingHandler
    {
        private const int MaxWaits = 5;
        private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            for (var wait = 1; ; wait++)
            {
                var response = await base.SendAsync(request, cancellationToken);
                if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                {
                    var problem = await Commands.ProblemText(response, cancellationToken);
                    response.Dispose();
                    throw new AccessDeniedException(request.Headers.Authorization is null && response.StatusCode == HttpStatusCode.Unauthorized
                        ? $"the farm needs an API key: set {ApiKeyVariable} or pass --api-key ({problem})"
                        : $"the farm refused the API key: {problem}");
                }

                if (response.StatusCode != HttpStatusCode.TooManyRequests || wait > MaxWaits)
                {
                    return response;
                }

                var delay = response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(wait);
                response.Dispose();
                await Task.Delay(delay < MaxWait ? delay : MaxWait, cancellationToken);
            }
        }
    }
}
