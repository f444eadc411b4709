using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Coordinator.Quotes;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Api.Apis;

public static class QuotesApi
{
    public static IEndpointRouteBuilder MapQuotesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").WithTags("Quotes");

        // A submitter's: a quote is the question asked before a submission (a CI key checks its spec's price), and
        // it costs the farm the same reading of history; viewers read the quotes jobs already have.
        api.MapPost("/projects/{project}/quotes", QuoteAsync)
            .WithName("CreateQuote")
            .WithSummary("What a job spec (the same JSON or YAML as a submission) would cost on the current fleet: device-seconds, money, energy and wall time with a low–high range, from the project's own history per engine, size and steps (the engine's prior before there is any). Writes nothing.")
            .Produces<QuoteView>()
            .ProducesValidationProblem()
            .RequireProjectRole(ApiKeyRole.Submitter);
        api.MapGet("/jobs/{jobId:guid}/quote", JobQuoteAsync)
            .WithName("GetJobQuote")
            .WithSummary("The quote a job was given at submission and, once it finished, its actual cost and the error against the quote.")
            .Produces<JobQuoteView>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .RequireProjectRole(ApiKeyRole.Viewer);
        api.MapGet("/projects/{project}/quotes/accuracy", (string project, QuoteBook quotes, CancellationToken ct) => quotes.AccuracyAsync(project, ct))
            .WithName("GetQuoteAccuracy")
            .WithSummary($"How close the project's quotes came, per kind of take (engine, size, steps): count, median absolute and signed error, and the same once a kind had {QuoteBook.SettledAfter} shots of history.")
            .Produces<QuoteAccuracy>()
            .RequireProjectRole(ApiKeyRole.Viewer);
        return app;
    }

    private static async Task<IResult> QuoteAsync(string project, bool? preview, HttpRequest request, QuoteBook quotes, CancellationToken cancellationToken)
    {
        var (spec, invalid) = await JobsApi.ReadSpecAsync(project, preview ?? false, request, cancellationToken);
        return invalid ?? Results.Ok(await quotes.QuoteAsync(spec!, cancellationToken));
    }

    private static async Task<IResult> JobQuoteAsync(Guid jobId, QuoteBook quotes, CancellationToken cancellationToken) =>
        await quotes.ForJobAsync(jobId, cancellationToken) is { } quote ? Results.Ok(quote) : JobsApi.NotFound($"quote for job {jobId} (jobs submitted before quotes existed have none)");
}
