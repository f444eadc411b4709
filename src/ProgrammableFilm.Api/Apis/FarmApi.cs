using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Api.Apis;

public static class FarmApi
{
    public static IEndpointRouteBuilder MapFarmApi(this IEndpointRouteBuilder app)
    {
        var farm = app.MapGroup("/api").WithTags("Farm").RequireAdmin();
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
        // A project's own keys may read its share; setting weights between productions is the farm's decision.
        app.MapGet("/api/projects/{project}/share", (string project, ProjectShares shares, CancellationToken ct) => shares.GetAsync(project, ct))
            .WithName("GetProjectShare")
            .WithSummary("A project's fair-share weight (1 unless set) and its live attempts against the fleet's.")
            .WithTags("Farm")
            .Produces<ProjectShareStatus>()
            .RequireProjectRole(ApiKeyRole.Viewer);
        farm.MapPut("/projects/{project}/share", SetShareAsync)
            .WithName("SetProjectShare")
            .WithSummary("Set a project's fair-share weight: with weights 3 and 1, two busy projects get 75% and 25% of the device time.")
            .Produces<ProjectShareStatus>()
            .ProducesProblem(StatusCodes.Status400BadRequest);
        return app;
    }

    /// <summary>The body of <c>PUT /api/projects/{project}/share</c>.</summary>
    public sealed record ShareRequest(double? Weight);

    private static async Task<IResult> SetShareAsync(string project, ShareRequest? request, ProjectShares shares, AuditLog audit, HttpContext http, CancellationToken cancellationToken)
    {
        if (request?.Weight is not { } weight)
        {
            await audit.RecordAsync(http.Caller(), project, "share.set", project, "invalid");
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid share", detail: "the body must be {\"weight\": N}");
        }

        try
        {
            var share = await shares.SetAsync(project, weight, cancellationToken);
            await audit.RecordAsync(http.Caller(), project, "share.set", project, "ok");
            return Results.Ok(share);
        }
        catch (ArgumentOutOfRangeException e)
        {
            await audit.RecordAsync(http.Caller(), project, "share.set", project, "invalid");
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
