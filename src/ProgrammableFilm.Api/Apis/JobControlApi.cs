using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Api.Apis;

public static class JobControlApi
{
    private const int DefaultLogPage = 100;
    private const int MaxLogPage = 1000;

    public static IEndpointRouteBuilder MapJobControlApi(this IEndpointRouteBuilder app)
    {
        var jobs = app.MapGroup("/api/jobs/{jobId:guid}").WithTags("Job control");
        var control = jobs.MapGroup("").RequireProjectRole(ApiKeyRole.Submitter);
        control.MapPost("/cancel", (Guid jobId, JobControl control, JobReports reports, AuditLog audit, HttpContext http, CancellationToken ct) => ApplyAsync("job.cancel", jobId, control.CancelJobAsync(jobId, ct), reports, audit, http, ct))
            .WithName("CancelJob")
            .WithSummary("Cancel a job: running attempts stop between sampler steps and are billed for the time they ran; outputs are kept.")
            .Produces<JobStatus>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        control.MapPost("/pause", (Guid jobId, JobControl control, JobReports reports, AuditLog audit, HttpContext http, CancellationToken ct) => ApplyAsync("job.pause", jobId, control.PauseAsync(jobId, ct), reports, audit, http, ct))
            .WithName("PauseJob")
            .WithSummary("Pause a job: nothing new is dispatched; running attempts finish.")
            .Produces<JobStatus>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        control.MapPost("/resume", (Guid jobId, JobControl control, JobReports reports, AuditLog audit, HttpContext http, CancellationToken ct) => ApplyAsync("job.resume", jobId, control.ResumeAsync(jobId, ct), reports, audit, http, ct))
            .WithName("ResumeJob")
            .WithSummary("Resume a paused job.")
            .Produces<JobStatus>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        control.MapPost("/retry", (Guid jobId, JobControl control, JobReports reports, AuditLog audit, HttpContext http, CancellationToken ct) => ApplyAsync("job.retry", jobId, control.RetryAsync(jobId, ct), reports, audit, http, ct))
            .WithName("RetryJob")
            .WithSummary("Run a failed or cancelled job again: only its unfinished tasks; succeeded frames are kept.")
            .Produces<JobStatus>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        jobs.MapGet("/logs", LogsAsync)
            .WithName("GetJobLogs")
            .WithSummary("The log lines of the job's attempts in task order, a page at a time (?limit=100, at most 1000; ?after=NEXT from the previous page), optionally of one task (?task=kf-00012) and one attempt number (?attempt=2).")
            .Produces<LogPage>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .RequireProjectRole(ApiKeyRole.Viewer);
        app.MapPost("/api/shots/{shotId:guid}/cancel", CancelShotAsync)
            .WithName("CancelShot")
            .WithSummary("Cancel one shot of a job; the job's other shots go on.")
            .WithTags("Job control")
            .Produces<ShotFiles>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .RequireProjectRole(ApiKeyRole.Submitter);
        return app;
    }

    private static async Task<IResult> ApplyAsync(string action, Guid jobId, Task<ControlResult> control, JobReports reports, AuditLog audit, HttpContext http, CancellationToken cancellationToken)
    {
        var result = await control;
        var caller = http.Caller();
        await audit.RecordAsync(caller, await ProjectAsync(http, caller, cancellationToken), action, jobId.ToString(), Outcome(result));
        return result switch
        {
            { Outcome: ControlOutcome.NotFound } => JobsApi.NotFound($"job {jobId}"),
            { Outcome: ControlOutcome.Conflict, Reason: var reason } => Conflict(reason),
            _ => Results.Ok(await reports.StatusAsync(jobId, cancellationToken)),
        };
    }

    private static async Task<IResult> CancelShotAsync(Guid shotId, JobControl control, JobReports reports, AuditLog audit, HttpContext http, CancellationToken cancellationToken)
    {
        var result = await control.CancelShotAsync(shotId, cancellationToken);
        var caller = http.Caller();
        await audit.RecordAsync(caller, caller.Project ?? await http.RequestServices.GetRequiredService<ResourceOwners>().OfShotAsync(shotId, cancellationToken), "shot.cancel", shotId.ToString(), Outcome(result));
        if (result.Outcome != ControlOutcome.Done)
        {
            return result.Outcome == ControlOutcome.NotFound ? JobsApi.NotFound($"shot {shotId}") : Conflict(result.Reason);
        }

        var shot = await reports.ShotFilesAsync(shotId, cancellationToken);
        return Results.Ok(shot);
    }

    private static async Task<IResult> LogsAsync(Guid jobId, string? task, int? attempt, int? limit, string? after, JobReports reports, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > MaxLogPage)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid page", detail: $"limit must be 1 to {MaxLogPage}");
        }

        if (!LogCursor.TryParse(after, out var cursor))
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid page", detail: "after must be the next value of a previous page");
        }

        return await reports.LogsAsync(jobId, task, attempt, cursor, limit ?? DefaultLogPage, cancellationToken) is { } logs ? Results.Ok(logs) : JobsApi.NotFound($"job {jobId}");
    }

    /// <summary>The job's project: the caller's own, or for an admin key the job's (the access filter has seen that it exists).</summary>
    private static async Task<string?> ProjectAsync(HttpContext http, Caller caller, CancellationToken cancellationToken) =>
        caller.Project ?? await http.RequestServices.GetRequiredService<ResourceOwners>().OfJobAsync(Guid.Parse((string)http.Request.RouteValues["jobId"]!), cancellationToken);

    private static string Outcome(ControlResult result) => result.Outcome switch
    {
        ControlOutcome.Done => "ok",
        ControlOutcome.NotFound => "not-found",
        _ => $"conflict: {result.Reason}",
    };

    private static IResult Conflict(string? reason) =>
        Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Not possible in the job's current state", detail: reason);
}
