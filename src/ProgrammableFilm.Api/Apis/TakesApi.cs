using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Coordinator.Takes;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Access;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Api.Apis;

/// <summary>A take's approval: an optional note, and optionally a note that rejects the shot's other pending takes.</summary>
public sealed record ApproveTakeRequest(string? Note, string? RejectOthers);

/// <summary>A take's rejection, with the reason.</summary>
public sealed record RejectTakeRequest(string? Note);

/// <summary>
/// Compare and decide (issue 12). Reading takes is a viewer's; approving and rejecting are a producer's (the creative
/// decision, kept from the CI keys that submit); iterating submits a job, so a submitter's.
/// </summary>
public static class TakesApi
{
    private const int MaxBodyBytes = 64 << 10;

    public static IEndpointRouteBuilder MapTakesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/shots/{shotId:guid}").WithTags("Takes");
        api.MapGet("/takes", ListAsync)
            .WithName("ListTakes")
            .WithSummary("Every take of the shot (any take's id names it; earlier iterations included), side by side: parameters and overrides, metrics (flicker, seam error, prompt adherence), cost, reused tasks, keyframe strip, video and manifest URLs, review; and the shot's numbered versions, the last being current.")
            .Produces<ShotTakes>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .RequireProjectRole(ApiKeyRole.Viewer);
        api.MapPost("/approve", ApproveAsync)
            .WithName("ApproveTake")
            .WithSummary("Approve a rendered take: it becomes the shot's current version (a new version number, recorded in its manifest with who approved it and when). rejectOthers rejects the shot's other pending takes with that note.")
            .Produces<ShotTakes>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .RequireProjectRole(ApiKeyRole.Producer);
        api.MapPost("/reject", RejectAsync)
            .WithName("RejectTake")
            .WithSummary("Reject a take with a note (required). The current version cannot be rejected: approve another take.")
            .Produces<ShotTakes>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .RequireProjectRole(ApiKeyRole.Producer);
        api.MapPost("/iterate", IterateAsync)
            .WithName("IterateShot")
            .WithSummary("Start the shot's next iteration in one call: a job whose takes are the body's variants (a list of overrides, or grid:) applied to the shot's approved take; lane, priority and preview as in a spec. 409 when no take is approved yet.")
            .Produces<JobStatus>(StatusCodes.Status201Created)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .RequireProjectRole(ApiKeyRole.Submitter);
        return app;
    }

    private static async Task<IResult> ListAsync(Guid shotId, TakeReviews takes, CancellationToken cancellationToken) =>
        await takes.ListAsync(shotId, cancellationToken) is { } list ? Results.Ok(list) : JobsApi.NotFound($"shot {shotId}");

    private static async Task<IResult> ApproveAsync(Guid shotId, ApproveTakeRequest? request, TakeReviews takes, IDbContextFactory<FarmDbContext> contexts, AuditLog audit, HttpContext http, CancellationToken cancellationToken)
    {
        var errors = ReviewNotes.Check("note", request?.Note, rejection: false, required: false).Concat(ReviewNotes.Check("rejectOthers", request?.RejectOthers, rejection: true, required: false)).ToList();
        var result = errors.Count > 0 ? null : await takes.ApproveAsync(shotId, await ReviewerAsync(http, contexts, cancellationToken), request?.Note, request?.RejectOthers, cancellationToken);
        return await AnswerAsync("take.approve", shotId, errors, result, takes, audit, http, cancellationToken);
    }

    private static async Task<IResult> RejectAsync(Guid shotId, RejectTakeRequest? request, TakeReviews takes, IDbContextFactory<FarmDbContext> contexts, AuditLog audit, HttpContext http, CancellationToken cancellationToken)
    {
        var errors = ReviewNotes.Check("note", request?.Note, rejection: true, required: true).ToList();
        var result = errors.Count > 0 ? null : await takes.RejectAsync(shotId, await ReviewerAsync(http, contexts, cancellationToken), request!.Note!, cancellationToken);
        return await AnswerAsync("take.reject", shotId, errors, result, takes, audit, http, cancellationToken);
    }

    private static async Task<IResult> AnswerAsync(string action, Guid shotId, List<SpecError> errors, ReviewResult? result, TakeReviews takes, AuditLog audit, HttpContext http, CancellationToken cancellationToken)
    {
        var project = (await takes.ListAsync(shotId, cancellationToken))?.Project;
        var outcome = errors.Count > 0 ? "invalid" : result!.Outcome switch
        {
            ReviewOutcome.Done => result.Version is { } version ? $"ok: v{version}" : "ok",
            ReviewOutcome.NotFound => "not-found",
            _ => $"conflict: {result.Message}",
        };
        await audit.RecordAsync(http.Caller(), project, action, shotId.ToString(), outcome);
        if (errors.Count > 0)
        {
            return Invalid(errors, "The review is invalid");
        }

        return result!.Outcome switch
        {
            ReviewOutcome.NotFound => JobsApi.NotFound($"shot {shotId}"),
            ReviewOutcome.Conflict => Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Not possible in the take's state", detail: result.Message),
            _ => Results.Ok(await takes.ListAsync(shotId, cancellationToken)),
        };
    }

    private static async Task<IResult> IterateAsync(Guid shotId, HttpRequest request, TakeReviews takes, JobReports reports, AuditLog audit, CancellationToken cancellationToken)
    {
        var project = (await takes.ListAsync(shotId, cancellationToken))?.Project;
        var (result, target, outcome) = await IterateCoreAsync(shotId, request, takes, reports, cancellationToken);
        await audit.RecordAsync(request.HttpContext.Caller(), project, "shot.iterate", target, outcome);
        return result;
    }

    private static async Task<(IResult Result, string Target, string Outcome)> IterateCoreAsync(Guid shotId, HttpRequest request, TakeReviews takes, JobReports reports, CancellationToken cancellationToken)
    {
        var target = shotId.ToString();
        using var reader = new StreamReader(request.Body);
        var buffer = new char[MaxBodyBytes + 1];
        var length = await reader.ReadBlockAsync(buffer, cancellationToken);
        if (length > MaxBodyBytes)
        {
            return (Invalid([new SpecError("$", $"the body is larger than {MaxBodyBytes} bytes")], "The iteration is invalid"), target, "invalid");
        }

        var text = new string(buffer, 0, length);
        SpecNode root;
        try
        {
            root = request.ContentType is { } type && type.Contains("yaml", StringComparison.OrdinalIgnoreCase) ? SpecDocument.ParseYaml(text) : SpecDocument.ParseJson(text);
        }
        catch (SpecSyntaxException e)
        {
            return (Invalid([new SpecError("$", e.Message)], "The iteration is invalid"), target, "invalid");
        }

        string[] known = ["variants", "lane", "priority", "preview"];
        var body = root as SpecMap;
        var fields = body?.Entries.ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal) ?? [];
        var errors = body is null ? [new SpecError("$", "must be a mapping with variants (and optionally lane, priority, preview)")] : fields.Keys.Where(k => !known.Contains(k, StringComparer.Ordinal))
            .Select(k => new SpecError(SpecText.Printable(k), $"unknown field (known fields: {string.Join(", ", known)})")).ToList();
        string? Scalar(string field) => fields.GetValueOrDefault(field) is SpecScalar { Text: { } value } ? value : null;
        int? priority = null;
        if (Scalar("priority") is { } p)
        {
            if (int.TryParse(p, System.Globalization.CultureInfo.InvariantCulture, out var value))
            {
                priority = value;
            }
            else
            {
                errors.Add(new SpecError("priority", $"'{SpecText.Printable(p)}' must be an integer from {SpecLimits.MinPriority} to {SpecLimits.MaxPriority}"));
            }
        }

        if (errors.Count > 0)
        {
            return (Invalid(errors, "The iteration is invalid"), target, "invalid");
        }

        var (job, invalid, conflict) = await takes.IterateAsync(shotId, fields.GetValueOrDefault("variants"), Scalar("lane"), priority, Scalar("preview") == "true", cancellationToken);
        if (invalid is not null)
        {
            return (Invalid(invalid.Errors, "The iteration is invalid"), target, "invalid");
        }

        if (conflict is not null)
        {
            return (Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "No approved take", detail: conflict), target, $"conflict: {conflict}");
        }

        if (job is null)
        {
            return (JobsApi.NotFound($"shot {shotId}"), target, "not-found");
        }

        return (Results.Created($"/api/jobs/{job.Id}", await reports.StatusAsync(job.Id, cancellationToken)), job.Id.ToString(), "ok");
    }

    /// <summary>The key's name and prefix: what a manifest and the contact sheet show as the approver.</summary>
    private static async Task<Reviewer> ReviewerAsync(HttpContext http, IDbContextFactory<FarmDbContext> contexts, CancellationToken cancellationToken)
    {
        var caller = http.Caller();
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var name = await db.ApiKeys.Where(k => k.Id == caller.KeyId).Select(k => k.Name).SingleOrDefaultAsync(cancellationToken);
        return new Reviewer(caller.KeyId, $"{name ?? "key"} ({caller.Prefix})");
    }

    private static IResult Invalid(IReadOnlyList<SpecError> errors, string title) => Results.ValidationProblem(
        errors.GroupBy(e => e.Field, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray(), StringComparer.Ordinal),
        detail: string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")),
        title: title,
        type: "https://programmablefilm.dev/problems/invalid-spec");
}
