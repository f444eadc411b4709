using ProgrammableFilm.Coordinator;

namespace ProgrammableFilm.Api.Apis;

public static class JobControlApi
{
    private const int DefaultLogPage = 100;
    private const int MaxLogPage = 1000;

    public static IEndpointRouteBuilder MapJobControlApi(this IEndpointRouteBuilder app)
    {
        var jobs = app.MapGroup("/api/jobs/{jobId:guid}").WithTags("Job control");
        jobs.MapPost("/cancel", (Guid jobId, JobControl control, JobReports reports, CancellationToken ct) => ApplyAsync(jobId, control.CancelJobAsync(jobId, ct), reports, ct))
            .WithName("CancelJob")
            .WithSummary("Cancel a job: running attempts stop between sampler steps and are billed for the time they ran; outputs are kept.")
            .Produces<JobStatus>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        jobs.MapPost("/pause", (Guid jobId, JobControl control, JobReports reports, CancellationToken ct) => ApplyAsync(jobId, control.PauseAsync(jobId, ct), reports, ct))
            .WithName("PauseJob")
            .WithSummary("Pause a job: nothing new is dispatched; running attempts finish.")
            .Produces<JobStatus>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        jobs.MapPost("/resume", (Guid jobId, JobControl control, JobReports reports, CancellationToken ct) => ApplyAsync(jobId, control.ResumeAsync(jobId, ct), reports, ct))
            .WithName("ResumeJob")
            .WithSummary("Resume a paused job.")
            .Produces<JobStatus>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        jobs.MapPost("/retry", (Guid jobId, JobControl control, JobReports reports, CancellationToken ct) => ApplyAsync(jobId, control.RetryAsync(jobId, ct), reports, ct))
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
            .ProducesProblem(StatusCodes.Status404NotFound);
        app.MapPost("/api/shots/{shotId:guid}/cancel", CancelShotAsync)
            .WithName("CancelShot")
            .WithSummary("Cancel one shot of a job; the job's other shots go on.")
            .WithTags("Job control")
            .Produces<ShotFiles>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        return app;
    }

    private static async Task<IResult> ApplyAsync(Guid jobId, Task<ControlResult> control, JobReports reports, CancellationToken cancellationToken) =>
        await control switch
        {
            { Outcome: ControlOutcome.NotFound } => JobsApi.NotFound($"job {jobId}"),
            { Outcome: ControlOutcome.Conflict, Reason: var reason } => Conflict(reason),
            _ => Results.Ok(await reports.StatusAsync(jobId, cancellationToken)),
        };

    private static async Task<IResult> CancelShotAsync(Guid shotId, JobControl control, JobReports reports, CancellationToken cancellationToken)
    {
        var result = await control.CancelShotAsync(shotId, cancellationToken);
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

    private static IResult Conflict(string? reason) =>
        Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Not possible in the job's current state", detail: reason);
}
