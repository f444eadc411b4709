using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Domain.Access;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Api.Apis;

public static class ShotsApi
{
    public static IEndpointRouteBuilder MapShotsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/shots/{shotId:guid}").WithTags("Shots").RequireProjectRole(ApiKeyRole.Viewer);
        api.MapGet("/video", VideoAsync).WithName("GetShotVideo").WithSummary("The shot's H.264 MP4, once assembled (range requests supported).")
            .Produces(StatusCodes.Status200OK, contentType: "video/mp4")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .WithMetadata(new LongLivedRead());
        api.MapGet("/manifest", ManifestAsync).WithName("GetShotManifest").WithSummary("A take's provenance manifest (lineage, overrides, reuse, approvals, AI-generated disclosure); ?take=N reads take N of the same shot.")
            .Produces(StatusCodes.Status200OK, contentType: "application/json")
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/frames/{frame:int}", FrameAsync).WithName("GetShotFrame").WithSummary("One rendered frame as PNG.")
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<IResult> VideoAsync(Guid shotId, JobReports reports, ShotStorage storage, CancellationToken cancellationToken)
    {
        var shot = await reports.ShotFilesAsync(shotId, cancellationToken);
        return shot?.Video is { } video && storage.Exists(video)
            ? Results.File(storage.FullPath(video), "video/mp4", $"{shot.Name}.mp4", enableRangeProcessing: true)
            : JobsApi.NotFound($"video for shot {shotId} (yet)");
    }

    private static async Task<IResult> ManifestAsync(Guid shotId, int? take, JobReports reports, Coordinator.Takes.TakeReviews takes, ShotStorage storage, CancellationToken cancellationToken)
    {
        if (take is { } number)
        {
            // Takes share the shot's project (one lineage never leaves its project), so the route's check covers them.
            if (await takes.FindTakeAsync(shotId, number, cancellationToken) is not { } takeId)
            {
                return JobsApi.NotFound($"take {number} of shot {shotId}");
            }

            shotId = takeId;
        }

        var shot = await reports.ShotFilesAsync(shotId, cancellationToken);
        return shot?.Manifest is { } manifest && storage.Exists(manifest)
            ? Results.File(storage.FullPath(manifest), "application/json")
            : JobsApi.NotFound($"manifest for shot {shotId} (yet)");
    }

    private static async Task<IResult> FrameAsync(Guid shotId, int frame, JobReports reports, ShotStorage storage, CancellationToken cancellationToken)
    {
        var shot = await reports.ShotFilesAsync(shotId, cancellationToken);
        if (shot is null || frame < 0 || frame >= shot.FrameCount)
        {
            return JobsApi.NotFound($"frame {frame} in shot {shotId}");
        }

        var path = ShotStorage.FramePath(shot.Folder, frame);
        return storage.Exists(path) ? Results.File(storage.FullPath(path), "image/png") : JobsApi.NotFound($"rendered frame {frame} in shot {shotId} (yet)");
    }
}
