using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Api.Access;

/// <summary>
/// Authenticates a request by its API key, from <c>Authorization: Bearer KEY</c> or <c>X-Api-Key: KEY</c>. A request
/// without a key is anonymous (the authorization policy turns it away with 401); a malformed, unknown, expired or
/// revoked key fails. Both answers are problem details with the reason; neither says whether a key exists.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeys keys, IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string KeyHeader = "X-Api-Key";

    /// <summary>Where the dashboard's live hub is served (<c>Dashboard.FarmHub.Path</c>).</summary>
    public const string HubPath = "/hubs";

    private static bool TakesKeyInQuery(HttpRequest request) =>
        request.Path.StartsWithSegments(HubPath)
        || (HttpMethods.IsGet(request.Method) && request.Path.StartsWithSegments("/api/shots") && (request.Path.Value!.EndsWith("/video", StringComparison.Ordinal) || request.Path.Value.Contains("/frames/", StringComparison.Ordinal)));
    private const string RejectionItem = "pfilm.key-rejection";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var bearer = Request.Headers.Authorization;
        var apiKey = Request.Headers[KeyHeader];
        // A browser sets no headers on a WebSocket, an <img> or a <video>: the dashboard's hub connection and its frames
        // and players send the key as access_token (only there: a key in an address can end up in a proxy's log).
        if (bearer.Count == 0 && apiKey.Count == 0 && TakesKeyInQuery(Request) && Request.Query["access_token"] is { Count: 1 } token)
        {
            apiKey = token;
        }

        if (bearer.Count == 0 && apiKey.Count == 0)
        {
            return AuthenticateResult.NoResult();
        }

        string? presented = null;
        if (bearer.Count + apiKey.Count == 1)
        {
            presented = bearer.Count == 1
                ? (bearer[0] is { } value && value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? value["Bearer ".Length..].Trim() : null)
                : apiKey[0]?.Trim();
        }

        // Two keys (or one in an unknown scheme) are refused rather than guessed between.
        var (caller, rejection) = presented is null ? (null, KeyRejection.Malformed) : await keys.AuthenticateAsync(presented, Context.RequestAborted);
        if (caller is null)
        {
            Context.Items[RejectionItem] = rejection;
            return AuthenticateResult.Fail($"API key {rejection.ToString().ToLowerInvariant()}");
        }

        Context.Features.Set(caller);
        var identity = new ClaimsIdentity(
            [
                new Claim(ClaimTypes.NameIdentifier, caller.KeyId.ToString()),
                new Claim(ClaimTypes.Role, caller.Role.ToString().ToLowerInvariant()),
                .. caller.Project is null ? Array.Empty<Claim>() : [new Claim("project", caller.Project)],
            ],
            SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var detail = Context.Items[RejectionItem] switch
        {
            KeyRejection.Malformed => $"The API key is malformed: send one key, as 'Authorization: Bearer KEY' or '{KeyHeader}: KEY'.",
            KeyRejection.Unknown => "The API key is not known to this farm.",
            KeyRejection.Expired => "The API key has expired.",
            KeyRejection.Revoked => "The API key was revoked.",
            _ => $"An API key is required: send 'Authorization: Bearer KEY' or '{KeyHeader}: KEY'.",
        };
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = { Status = StatusCodes.Status401Unauthorized, Title = "Unauthorized", Detail = detail },
        });
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        await problems.WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = { Status = StatusCodes.Status403Forbidden, Title = "Forbidden", Detail = "This needs a farm admin key." },
        });
    }
}

public static class CallerExtensions
{
    /// <summary>The authenticated caller; every endpoint that reaches its handler has one (the fallback policy sees to it).</summary>
    public static Caller Caller(this HttpContext context) =>
        context.Features.Get<Caller>() ?? throw new InvalidOperationException("no authenticated caller: is the endpoint anonymous?");
}
