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
        return app;
    }

    private static async Task<IResult> ReplayAsync(string queue, ErrorQueues queues, CancellationToken cancellationToken) =>
        await queues.ReplayAsync(queue, cancellationToken) is { } moved
            ? Results.Ok(new ReplayResult(queue, moved))
            : JobsApi.NotFound($"error queue '{queue}' in this farm");
}

/// <summary>How many messages one replay moved back.</summary>
public sealed record ReplayResult(string Queue, int Replayed);
