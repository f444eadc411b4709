using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Net.Http.Headers;
using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Coordinator.Plates;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Api.Apis;

/// <summary>
/// Camera plates (issue 12): real footage a shot starts from, uploaded once and named by id in any number of specs
/// (<c>plate: {id, strength}</c>). Uploading is a submitter's (it is the first step of submitting a hybrid shot).
/// </summary>
public static class PlatesApi
{
    public static IEndpointRouteBuilder MapPlatesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/projects/{project}/plates").WithTags("Plates");
        api.MapPost("", UploadAsync)
            .WithName("UploadPlate")
            .WithSummary("Upload a camera plate as multipart/form-data: one MP4, or PNG/JPEG frames in order, each in a part named file. The files are recognised by their bytes, decoded to frames and checked to be one size; at most Coordinator:PlateMaxBytes in all. Answers the plate's id (for plate: {id} in a spec), its SHA-256 and size.")
            .Produces<PlateInfo>(StatusCodes.Status201Created)
            .ProducesValidationProblem()
            .WithMetadata(new Microsoft.AspNetCore.Mvc.DisableRequestSizeLimitAttribute())
            .RequireProjectRole(ApiKeyRole.Submitter);
        api.MapGet("/{plateId:guid}", GetAsync)
            .WithName("GetPlate")
            .WithSummary("An uploaded plate: its hash, type, file names, frames, size, who uploaded it and when.")
            .Produces<PlateInfo>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .RequireProjectRole(ApiKeyRole.Viewer);
        api.MapDelete("/{plateId:guid}", DeleteAsync)
            .WithName("DeletePlate")
            .WithSummary("Delete a plate's frames (a producer's decision: footage may be licensed for a time). Refused while a queued or running shot starts from it; the plate stays listed as deleted, so manifests keep its provenance and specs naming it are refused. Deleting again answers the same.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .RequireProjectRole(ApiKeyRole.Producer);
        return app;
    }

    private static async Task<IResult> UploadAsync(string project, HttpRequest request, PlateStore plates, CoordinatorOptions options, IDbContextFactory<FarmDbContext> contexts, AuditLog audit, CancellationToken cancellationToken)
    {
        var (result, target, outcome) = await UploadCoreAsync(project, request, plates, options, contexts, cancellationToken);
        await audit.RecordAsync(request.HttpContext.Caller(), project, "plate.upload", target, outcome);
        return result;
    }

    /// <summary>The upload, and what the audit log says of it: the plate and its hash, or the refused field (refusals are recorded like refused submissions).</summary>
    private static async Task<(IResult Result, string Target, string Outcome)> UploadCoreAsync(string project, HttpRequest request, PlateStore plates, CoordinatorOptions options, IDbContextFactory<FarmDbContext> contexts, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var type) || !type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(type.Boundary).Value is not { Length: > 0 } boundary)
        {
            return Invalid(project, "file", "send the plate as multipart/form-data, each file in a part named file");
        }

        if (request.ContentLength > options.PlateMaxBytes + (1 << 20))
        {
            return Invalid(project, "file", $"the plate is over the limit of {options.PlateMaxBytes} bytes");
        }

        var caller = request.HttpContext.Caller();
        await using var db = await contexts.CreateDbContextAsync(cancellationToken);
        var name = await db.ApiKeys.Where(k => k.Id == caller.KeyId).Select(k => k.Name).SingleOrDefaultAsync(cancellationToken);
        try
        {
            var plate = await plates.IngestAsync(project, FilesAsync(new MultipartReader(boundary, request.Body), cancellationToken), $"{name ?? "key"} ({caller.Prefix})", caller.KeyId, cancellationToken);
            return (Results.Created($"/api/projects/{project}/plates/{plate.Id}", plate), plate.Id.ToString(), $"ok: sha256 {plate.Sha256}");
        }
        catch (PlateRejectedException e)
        {
            return Invalid(project, e.Field, e.Message);
        }
        catch (InvalidDataException e)
        {
            return Invalid(project, "file", $"the multipart body is malformed: {e.Message}");
        }
    }

    private static async Task<IResult> GetAsync(string project, Guid plateId, PlateStore plates, CancellationToken cancellationToken) =>
        await plates.FindAsync(plateId, cancellationToken) is { } plate && plate.Project == project ? Results.Ok(plate) : JobsApi.NotFound($"plate {plateId}");

    private static async Task<IResult> DeleteAsync(string project, Guid plateId, HttpContext context, PlateStore plates, AuditLog audit, CancellationToken cancellationToken)
    {
        var (outcome, usedBy) = await plates.DeleteAsync(project, plateId, cancellationToken);
        if (outcome == PlateDeletion.NotFound)
        {
            return JobsApi.NotFound($"plate {plateId}");
        }

        var reason = outcome == PlateDeletion.InUse ? $"shots {string.Join(", ", usedBy)} start from it and have not finished" : null;
        await audit.RecordAsync(context.Caller(), project, "plate.delete", plateId.ToString(), reason is null ? "ok" : $"conflict: {reason}");
        return reason is null
            ? Results.NoContent()
            : Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "The plate is in use", detail: reason);
    }

    /// <summary>The request's file parts in order, each streamed; any other part is an error naming it.</summary>
    private static async IAsyncEnumerable<PlateFile> FilesAsync(MultipartReader reader, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var index = 0;
        while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
        {
            if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition) || !disposition.IsFileDisposition())
            {
                throw new PlateRejectedException(disposition?.Name.Value ?? "file", "must be a file part (Content-Disposition: form-data; name=\"file\"; filename=…)");
            }

            var field = HeaderUtilities.RemoveQuotes(disposition.Name).Value;
            if (field != "file")
            {
                throw new PlateRejectedException(field ?? "file", "is not a field of a plate upload: send each frame or the MP4 in a part named file");
            }

            yield return new PlateFile($"file[{index++}]", HeaderUtilities.RemoveQuotes(disposition.FileName).Value ?? "", section.Body);
        }
    }

    private static (IResult Result, string Target, string Outcome) Invalid(string project, string field, string message)
    {
        // The field may be a part name the client chose: made printable for the problem's JSON and the audit line.
        field = Domain.Specs.SpecText.Printable(field);
        var problem = Results.ValidationProblem(
            new Dictionary<string, string[]>(StringComparer.Ordinal) { [field] = [message] },
            detail: $"{field}: {message}",
            title: "The plate is invalid",
            type: "https://programmablefilm.dev/problems/invalid-plate");
        return (problem, project, $"invalid: {field}");
    }
}
