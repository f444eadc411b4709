using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.RateLimiting;
using ProgrammableFilm.Api.Apis;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Api.Access;

/// <summary>
/// Who may call the farm: every endpoint needs a valid API key unless it says <c>AllowAnonymous</c> (health,
/// metrics, the OpenAPI document); farm endpoints need an admin key; project endpoints check the project that owns
/// the job, shot or key named in the route (<see cref="RequireProjectRole{TBuilder}"/>), answering 404 for another
/// project's ids. Each key has its own request budget.
/// </summary>
public static class AccessExtensions
{
    public const string AdminPolicy = "admin";

    public static void AddFarmAccess(this IHostApplicationBuilder builder)
    {
        var limits = RateLimitOptions.FromConfiguration(builder.Configuration);
        builder.Services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorizationBuilder()
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build())
            .AddPolicy(AdminPolicy, policy => policy.RequireRole("admin"));
        builder.Services.AddRateLimiter(options =>
        {
            options.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
            {
                if (context.GetEndpoint()?.Metadata.GetMetadata<IAllowAnonymous>() is not null)
                {
                    return RateLimitPartition.GetNoLimiter("anonymous-endpoints");
                }

                // Requests without a valid key share one budget per address, so a flood of bad keys is limited too.
                var partition = context.Features.Get<Caller>() is { } caller ? $"key:{caller.KeyId}" : $"address:{context.Connection.RemoteIpAddress}";
                return RateLimitPartition.GetFixedWindowLimiter(partition, _ => new FixedWindowRateLimiterOptions
                {
                    PermitLimit = limits.PermitLimit,
                    Window = limits.Window,
                    QueueLimit = 0,
                });
            });
            options.OnRejected = async (rejected, cancellationToken) =>
            {
                var response = rejected.HttpContext.Response;
                response.StatusCode = StatusCodes.Status429TooManyRequests;
                var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : limits.Window;
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await rejected.HttpContext.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = rejected.HttpContext,
                    ProblemDetails =
                    {
                        Status = StatusCodes.Status429TooManyRequests,
                        Title = "Too many requests",
                        Detail = $"This key may make {limits.PermitLimit} requests per {limits.Window.TotalSeconds:0.###} s; retry after {seconds} s.",
                    },
                });
            };
        });
    }

    /// <summary>Authentication, then the per-key rate limit (it needs the key), then authorization, then reads in turn.</summary>
    public static void UseFarmAccess(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseRateLimiter();
        app.UseAuthorization();
        app.Use(ReadsInTurn(RateLimitOptions.FromConfiguration(app.Configuration).ConcurrentReads));
        app.Use(CheckProjectAsync);
    }

    /// <summary>
    /// At most <paramref name="permits"/> reads run at once, the rest wait their turn (oldest first, never refused):
    /// with fifty clients reading a big job's status on two cores, twelve at a time beat all fifty reaching PostgreSQL
    /// together in four of five alternating runs (p95 130–143 ms against 168–204), and six at a time did worse
    /// (bench/reads.sh; docs/performance.md). Long-lived reads (the dashboard's hub, a video's download) do not wait.
    /// Not a limiter of the rate limiting middleware: that one takes a key's permit again for every request it queues.
    /// </summary>
    private static Func<HttpContext, RequestDelegate, Task> ReadsInTurn(int permits)
    {
        var turns = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = permits,
            QueueLimit = int.MaxValue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        return async (http, next) =>
        {
            var endpoint = http.GetEndpoint();
            if (!HttpMethods.IsGet(http.Request.Method)
                || endpoint?.Metadata.GetMetadata<IAllowAnonymous>() is not null
                || endpoint?.Metadata.GetMetadata<Microsoft.AspNetCore.SignalR.HubMetadata>() is not null
                || endpoint?.Metadata.GetMetadata<LongLivedRead>() is not null)
            {
                await next(http);
                return;
            }

            using var turn = await turns.AcquireAsync(1, http.RequestAborted);
            if (!turn.IsAcquired)
            {
                await Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Busy", detail: "Too many reads are waiting; retry in a moment.").ExecuteAsync(http);
                return;
            }

            await next(http);
        };
    }

    /// <summary>The farm's own endpoints (fleet, queues, every project's keys and audit): admin keys only, 403 for others.</summary>
    public static TBuilder RequireAdmin<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(AdminPolicy);

    /// <summary>
    /// Lets the request through only if the caller's key is for the project that owns the route's <c>{project}</c>,
    /// <c>{jobId}</c> or <c>{shotId}</c> with at least <paramref name="role"/> (admin keys: any project). Another
    /// project's id, and an id that does not exist, both get the same 404; the caller's own project with too low a
    /// role gets 403. Checked by <see cref="UseFarmAccess"/>'s middleware before the request body is read.
    /// </summary>
    public static TBuilder RequireProjectRole<TBuilder>(this TBuilder builder, ApiKeyRole role) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new RequiredProjectRole(role));

    /// <summary>Runs after authorization (the caller is known) and before the endpoint binds anything.</summary>
    private static async Task CheckProjectAsync(HttpContext http, RequestDelegate next)
    {
        if (http.GetEndpoint()?.Metadata.GetMetadata<RequiredProjectRole>() is not { } required)
        {
            await next(http);
            return;
        }

        var caller = http.Caller();
        var (what, owner) = caller.IsAdmin ? ("", null) : await OwnerAsync(http);
        var denial = AccessPolicy.Decide(caller, owner, required.Role) switch
        {
            AccessDecision.Allowed => null,
            AccessDecision.Forbidden => Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: $"This needs a {required.Role.ToString().ToLowerInvariant()} key of the project (or an admin key)."),
            _ => JobsApi.NotFound(what),
        };
        if (denial is null)
        {
            await next(http);
            return;
        }

        await denial.ExecuteAsync(http);
    }

    private static async Task<(string What, string? Owner)> OwnerAsync(HttpContext http)
    {
        var owners = http.RequestServices.GetRequiredService<ResourceOwners>();
        var route = http.Request.RouteValues;
        if (route.TryGetValue("project", out var project) && project is string name)
        {
            return ($"project {name}", name);
        }

        if (route.TryGetValue("jobId", out var job) && Guid.TryParse(job as string, out var jobId))
        {
            return ($"job {jobId}", await owners.OfJobAsync(jobId, http.RequestAborted));
        }

        if (route.TryGetValue("shotId", out var shot) && Guid.TryParse(shot as string, out var shotId))
        {
            return ($"shot {shotId}", await owners.OfShotAsync(shotId, http.RequestAborted));
        }

        throw new InvalidOperationException($"{http.Request.Path}: a project endpoint needs {{project}}, {{jobId}} or {{shotId}} in its route");
    }
}

/// <summary>Endpoint metadata: the least role of the owning project that the endpoint needs.</summary>
public sealed record RequiredProjectRole(ApiKeyRole Role);

/// <summary>Endpoint metadata: a read that may last as long as its client wants (a download), outside the read limit.</summary>
public sealed record LongLivedRead;

/// <summary>
/// Each key's request budget: <c>Auth:RateLimit:PermitLimit</c> requests per <c>Auth:RateLimit:Window</c>; and how
/// many reads of all keys run at once, <c>Api:ConcurrentReads</c> (six per core by default).
/// </summary>
public sealed record RateLimitOptions(int PermitLimit, TimeSpan Window, int ConcurrentReads)
{
    public static RateLimitOptions FromConfiguration(IConfiguration configuration) => new(
        configuration.GetValue("Auth:RateLimit:PermitLimit", 600),
        configuration.GetValue("Auth:RateLimit:Window", TimeSpan.FromSeconds(10)),
        Math.Max(1, configuration.GetValue("Api:ConcurrentReads", 6 * Environment.ProcessorCount)));
}
