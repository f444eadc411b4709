using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Domain.Access;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Api.Apis;

public static class JobsApi
{
    private const int MaxSpecBytes = 1 << 20;
    private const int MaxPageSize = 200;

    public static IEndpointRouteBuilder MapJobsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").WithTags("Jobs");
        api.MapPost("/projects/{project}/jobs", SubmitAsync)
            .WithName("SubmitJob")
            .WithSummary("Validate a job spec (JSON, or YAML with Content-Type application/yaml), plan it and queue it; ?preview=true (or preview: true in the spec) renders a cheap preview; budget: {limitUsd, softFraction} in the spec gives the job its own budget, written with it.")
            .Produces<JobStatus>(StatusCodes.Status201Created)
            .ProducesValidationProblem()
            .RequireProjectRole(ApiKeyRole.Submitter);
        api.MapGet("/projects/{project}/jobs", ListAsync)
            .WithName("ListJobs")
            .WithSummary("A project's jobs, newest first, a page at a time (?limit=50&offset=0; limit at most 200).")
            .Produces<JobPage>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .RequireProjectRole(ApiKeyRole.Viewer);
        api.MapGet("/jobs/{jobId:guid}", StatusAsync)
            .WithName("GetJob")
            .WithSummary("A job's state, progress, shots and cost so far.")
            .Produces<JobStatus>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .RequireProjectRole(ApiKeyRole.Viewer);
        api.MapGet("/jobs/{jobId:guid}/cost", CostAsync)
            .WithName("GetJobCost")
            .WithSummary("What a job cost, from the usage ledger: per shot and per device SKU.")
            .Produces<JobCost>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .RequireProjectRole(ApiKeyRole.Viewer);
        return app;
    }

    private static async Task<IResult> SubmitAsync(string project, bool? preview, HttpRequest request, JobSubmission submission, JobReports reports, AuditLog audit, CancellationToken cancellationToken)
    {
        var result = await SubmitSpecAsync(project, preview ?? false, request, submission, reports, cancellationToken);
        var (target, outcome) = result is IValueHttpResult { Value: JobStatus job } ? (job.Id.ToString(), "ok") : (project, "invalid");
        await audit.RecordAsync(request.HttpContext.Caller(), project, "job.submit", target, outcome);
        return result;
    }

    private static async Task<IResult> SubmitSpecAsync(string project, bool preview, HttpRequest request, JobSubmission submission, JobReports reports, CancellationToken cancellationToken)
    {
        var (spec, invalid) = await ReadSpecAsync(project, preview, request, cancellationToken);
        if (invalid is not null)
        {
            return invalid;
        }

        Data.Entities.Job job;
        try
        {
            job = await submission.SubmitAsync(spec!, cancellationToken);
        }
        catch (SpecRejectedException e)
        {
            return Invalid(e.Errors);
        }

        var status = await reports.StatusAsync(job.Id, cancellationToken);
        return Results.Created($"/api/jobs/{job.Id}", status);
    }

    /// <summary>
    /// The request's job spec (JSON, or YAML by Content-Type), validated completely and matched against the URL's
    /// project, with <see cref="PreviewPolicy"/> applied when asked; or the 400 problem naming every broken field.
    /// Submission and quotes read specs the same way.
    /// </summary>
    internal static async Task<(JobSpec? Spec, IResult? Invalid)> ReadSpecAsync(string project, bool preview, HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentLength > MaxSpecBytes)
        {
            return (null, Invalid("$", $"the spec is larger than {MaxSpecBytes} bytes"));
        }

        // A chunked body announces no length: read at most one character past the limit (a character is at least a byte).
        using var reader = new StreamReader(request.Body);
        var buffer = new char[(request.ContentLength ?? MaxSpecBytes) + 1];
        var length = await reader.ReadBlockAsync(buffer, cancellationToken);
        if (length > MaxSpecBytes)
        {
            return (null, Invalid("$", $"the spec is larger than {MaxSpecBytes} bytes"));
        }

        var text = new string(buffer, 0, length);
        var isYaml = request.ContentType is { } contentType && contentType.Contains("yaml", StringComparison.OrdinalIgnoreCase);
        var result = isYaml ? JobSpecReader.ReadYaml(text) : JobSpecReader.ReadJson(text);
        if (!result.IsValid)
        {
            return (null, Invalid(result.Errors));
        }

        if (!string.Equals(result.Spec!.Project, project, StringComparison.Ordinal))
        {
            return (null, Invalid("project", $"'{result.Spec.Project}' does not match the project in the URL ('{project}')"));
        }

        return (preview && !result.Spec.Preview ? PreviewPolicy.Apply(result.Spec) : result.Spec, null);
    }

    private static async Task<IResult> ListAsync(string project, int? limit, int? offset, JobReports reports, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > MaxPageSize || offset is < 0)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid page", detail: $"limit must be 1 to {MaxPageSize} and offset at least 0");
        }

        return Results.Ok(await reports.ListAsync(project, limit ?? 50, offset ?? 0, cancellationToken));
    }

    private static async Task<IResult> StatusAsync(Guid jobId, JobReports reports, CancellationToken cancellationToken) =>
        await reports.StatusAsync(jobId, cancellationToken) is { } status ? Results.Ok(status) : NotFound($"job {jobId}");

    private static async Task<IResult> CostAsync(Guid jobId, JobReports reports, CancellationToken cancellationToken) =>
        await reports.CostAsync(jobId, cancellationToken) is { } cost ? Results.Ok(cost) : NotFound($"job {jobId}");

    internal static IResult NotFound(string what) =>
        Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not found", detail: $"There is no {what}.");

    internal static IResult Invalid(string field, string message) => Invalid([new SpecError(field, message)]);

    internal static IResult Invalid(IReadOnlyList<SpecError> errors) => Results.ValidationProblem(
        errors.GroupBy(e => e.Field, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray(), StringComparer.Ordinal),
        detail: string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")),
        title: "The job spec is invalid",
        type: "https://programmablefilm.dev/problems/invalid-spec");
}
