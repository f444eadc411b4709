using ProgrammableFilm.Coordinator;

namespace ProgrammableFilm.Api.Apis;

public static class FarmApi
{
    public static IEndpointRouteBuilder MapFarmApi(this IEndpointRouteBuilder app)
    {
        var farm = app.MapGroup("/api").WithTags("Farm");
        farm.MapGet("/workers", (JobReports reports, CancellationToken ct) => reports.WorkersAsync(ct))
            .WithName("ListWorkers")
            .WithSummary("The fleet: every worker seen, its pool, device, state (idle, busy, lost) and last contact.")
            .Produces<IReadOnlyList<WorkerStatus>>();
        farm.MapGet("/farm/error-queues", (ErrorQueues queues, CancellationToken ct) => queues.CountAsync(ct))
            .WithName("ListErrorQueues")
            .WithSummary("Messages in the farm's _error queues (should be none); replay them once their cause is fixed.")
            .Produces<IReadOnlyList<ErrorQueueCount>>();
        farm.MapPost("/farm/error-queues/{queue}/replay", ReplayAsync)
            .WithName("ReplayErrorQueue")
            .WithSummary("Move every message of one _error queue back to the queue it failed on.")
            .Produces<ReplayResult>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        farm.MapGet("/projects/{project}/share", (string project, ProjectShares shares, CancellationToken ct) => shares.GetAsync(project, ct))
            .WithName("GetProjectShare")
            .WithSummary("A project's fair-share weight (1 unless set) and its live attempts against the fleet's.")
            .Produces<ProjectShareStatus>();
        farm.MapPut("/projects/{project}/share", SetShareAsync)
            .WithName("SetProjectShare")
            .WithSummary("Set a project's fair-share weight: with weights 3 and 1, two busy projects get 75% and 25% of the device time.")
            .Produces<ProjectShareStatus>()
            .ProducesProblem(StatusCodes.Status400BadRequest);
        return app;
    }

    /// <summary>The body of <c>PUT /api/projects/{project}/share</c>.</summary>
    public sealed record ShareRequest(double? Weight);

    private static async Task<IResult> SetShareAsync(string project, ShareRequest? request, ProjectShares shares, CancellationToken cancellationToken)
    {
        if (request?.Weight is not { } weight)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid share", detail: "the body must be {\"weight\": N}");
        }

        try
        {
            return Results.Ok(await shares.SetAsync(project, weight, cancellationToken));
        }
        catch (ArgumentOutOfRangeException e)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid share", detail: e.Message.Split(" (Parameter", 2)[0]);
        }
    }

    private static async Task<IResult> ReplayAsync(string queue, ErrorQueues queues, CancellationToken cancellationToken) =>
        await queues.ReplayAsync(queue, cancellationToken) is { } moved
            ? Results.Ok(new ReplayResult(queue, moved))
            : JobsApi.NotFound($"error queue '{queue}' in this farm");
}

/// <summary>How many messages one replay moved back.</summary>
public sealed record ReplayResult(string Queue, int Replayed);
