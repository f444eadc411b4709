using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Api.Apis;

public static class AuditApi
{
    private const int MaxPageSize = 500;

    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/projects/{project}/audit", (string project, int? limit, long? before, AuditLog audit, CancellationToken ct) => ListAsync(project, limit, before, audit, ct))
            .RequireProjectRole(ApiKeyRole.Producer)
            .WithName("GetProjectAuditLog")
            .WithSummary("Who did what in the project, newest first (?limit=100&before=ID for the next page): producers and admins.");
        app.MapGet("/api/audit", (int? limit, long? before, AuditLog audit, CancellationToken ct) => ListAsync(null, limit, before, audit, ct))
            .RequireAdmin()
            .WithName("GetAuditLog")
            .WithSummary("The whole farm's audit log, newest first (admins only).");
        return app;
    }

    private static async Task<IResult> ListAsync(string? project, int? limit, long? before, AuditLog audit, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > MaxPageSize || before is < 1)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid page", detail: $"limit must be 1 to {MaxPageSize} and before at least 1");
        }

        return Results.Ok(await audit.ListAsync(project, limit ?? 100, before, cancellationToken));
    }
}
