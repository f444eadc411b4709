using System.Data.Common;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Storage;

namespace ProgrammableFilm.Api.Extensions;

/// <summary>
/// A request that failed because the database could not be reached (restarting, down for a minute, its connections
/// all taken) is answered 503 with <c>Retry-After</c>, not 500: the farm is not broken, asking again in a few seconds
/// is what a client should do.
/// </summary>
public sealed class DatabaseUnavailableHandler(IProblemDetailsService problems, ILogger<DatabaseUnavailableHandler> logger) : IExceptionHandler
{
    /// <summary>A restart takes a few seconds; a client asking sooner would only get this answer again.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (!IsDatabaseUnavailable(exception) || httpContext.Response.HasStarted)
        {
            return false;
        }

        logger.LogWarning("{Method} {Path} answered 503: the database is unavailable ({Reason})", httpContext.Request.Method, httpContext.Request.Path, Innermost(exception).Message);
        httpContext.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        httpContext.Response.Headers.RetryAfter = ((int)RetryAfter.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            ProblemDetails =
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "The farm's database is unavailable",
                Detail = "The farm's database cannot be reached; it may be restarting.",
            },
        });
    }

    /// <summary>EF's retrying strategy wraps the provider's transient error; a failed batch may carry it inside.</summary>
    private static bool IsDatabaseUnavailable(Exception exception) => exception switch
    {
        DbException { IsTransient: true } or RetryLimitExceededException => true,
        AggregateException aggregate => aggregate.InnerExceptions.Any(IsDatabaseUnavailable),
        { InnerException: { } inner } => IsDatabaseUnavailable(inner),
        _ => false,
    };

    private static Exception Innermost(Exception exception) => exception.InnerException is { } inner ? Innermost(inner) : exception;
}
