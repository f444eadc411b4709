using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Api.Apis;

/// <summary>A request for a new key. <see cref="Role"/>: <c>viewer</c>, <c>submitter</c>, <c>producer</c> (or <c>admin</c> at <c>/api/keys</c>).</summary>
public sealed record CreateKeyRequest(string? Name, string? Role, DateTime? ExpiresAt);

public static class KeysApi
{
    private const int MaxNameLength = 200;

    public static IEndpointRouteBuilder MapKeysApi(this IEndpointRouteBuilder app)
    {
        var project = app.MapGroup("/api/projects/{project}/keys").RequireProjectRole(ApiKeyRole.Producer);
        project.MapPost("", (string project, CreateKeyRequest request, ApiKeys keys, AuditLog audit, HttpContext http, TimeProvider time, CancellationToken ct) => CreateAsync(project, request, keys, audit, http, time, ct))
            .WithName("CreateProjectKey")
            .WithSummary("Make a key for the project (producers: up to their own role); the key is in the answer, once.");
        project.MapGet("", (string project, ApiKeys keys, CancellationToken ct) => keys.ListAsync(project, ct))
            .WithName("ListProjectKeys")
            .WithSummary("The project's keys: name, prefix, role, expiry, revocation; never the key.");
        project.MapDelete("/{keyId:guid}", (string project, Guid keyId, ApiKeys keys, AuditLog audit, HttpContext http, CancellationToken ct) => RevokeAsync(project, keyId, keys, audit, http, ct))
            .WithName("RevokeProjectKey")
            .WithSummary("Revoke one of the project's keys: it stops working at once; its row stays for the audit log.")
            .Produces<ApiKeyInfo>()
            .ProducesProblem(StatusCodes.Status404NotFound);

        var farm = app.MapGroup("/api/keys").RequireAdmin();
        farm.MapPost("", (CreateKeyRequest request, ApiKeys keys, AuditLog audit, HttpContext http, TimeProvider time, CancellationToken ct) => CreateAsync(null, request, keys, audit, http, time, ct))
            .WithName("CreateAdminKey")
            .WithSummary("Make a farm-wide admin key (admins only); the key is in the answer, once.");
        farm.MapGet("", (ApiKeys keys, CancellationToken ct) => keys.ListAsync(null, ct))
            .WithName("ListKeys")
            .WithSummary("Every key of the farm (admins only).");
        farm.MapDelete("/{keyId:guid}", (Guid keyId, ApiKeys keys, AuditLog audit, HttpContext http, CancellationToken ct) => RevokeAsync(null, keyId, keys, audit, http, ct))
            .WithName("RevokeKey")
            .WithSummary("Revoke any key of the farm (admins only).")
            .Produces<ApiKeyInfo>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<IResult> CreateAsync(string? project, CreateKeyRequest request, ApiKeys keys, AuditLog audit, HttpContext http, TimeProvider time, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var name = request.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > MaxNameLength || name.Any(char.IsControl))
        {
            errors["name"] = [$"is required: 1 to {MaxNameLength} printable characters"];
        }

        var expected = project is null ? "admin" : "viewer, submitter or producer";
        if (!Enum.TryParse<ApiKeyRole>(request.Role, ignoreCase: true, out var role) || !Enum.IsDefined(role) || request.Role!.Any(char.IsDigit) || (role == ApiKeyRole.Admin) != (project is null))
        {
            errors["role"] = [$"must be {expected}"];
        }

        if (request.ExpiresAt is { } expiresAt && expiresAt.ToUniversalTime() <= time.GetUtcNow().UtcDateTime)
        {
            errors["expiresAt"] = ["must be in the future"];
        }

        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors, title: "The key request is invalid");
        }

        var caller = http.Caller();
        if (!AccessPolicy.MayGrant(caller, project, role))
        {
            await audit.RecordAsync(caller, project, "key.create", name!, "forbidden");
            return Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: $"A {caller.Role.ToString().ToLowerInvariant()} key cannot make a {role.ToString().ToLowerInvariant()} key.");
        }

        var created = await keys.CreateAsync(name!, project, role, request.ExpiresAt?.ToUniversalTime(), caller.KeyId, cancellationToken);
        await audit.RecordAsync(caller, project, "key.create", $"{created.Info.Id} ({created.Info.Prefix}, {created.Info.Role})", "ok");
        return Results.Created(project is null ? $"/api/keys/{created.Info.Id}" : $"/api/projects/{project}/keys/{created.Info.Id}", created);
    }

    private static async Task<IResult> RevokeAsync(string? project, Guid keyId, ApiKeys keys, AuditLog audit, HttpContext http, CancellationToken cancellationToken)
    {
        var revoked = await keys.RevokeAsync(keyId, project, cancellationToken);
        await audit.RecordAsync(http.Caller(), revoked?.Project ?? project, "key.revoke", keyId.ToString(), revoked is null ? "not-found" : "ok");
        return revoked is null ? JobsApi.NotFound($"key {keyId}") : Results.Ok(revoked);
    }
}
