namespace ProgrammableFilm.Domain.Access;

/// <summary>
/// What an API key may do. Project roles are ordered: each includes the ones below it. <see cref="Admin"/> is
/// farm-wide (every project, the fleet, prices) and belongs to no project.
/// </summary>
public enum ApiKeyRole
{
    /// <summary>Reads the project's jobs, shots, frames, videos, manifests and costs.</summary>
    Viewer,

    /// <summary>Also submits, cancels, pauses, resumes and retries the project's jobs.</summary>
    Submitter,

    /// <summary>Also manages the project's keys and budgets, and reads its audit log.</summary>
    Producer,

    Admin,
}

/// <summary>Who is asking: the key's id, its project (null for an admin key) and its role.</summary>
public sealed record Caller(Guid KeyId, string Prefix, string? Project, ApiKeyRole Role)
{
    public bool IsAdmin => Role == ApiKeyRole.Admin;
}

/// <summary>The answer to "may this caller do that to this project's thing?".</summary>
public enum AccessDecision
{
    Allowed,

    /// <summary>The thing does not exist, or belongs to another project: the same answer, so ids do not leak.</summary>
    NotFound,

    /// <summary>The caller's own project, but a role too low for the action.</summary>
    Forbidden,
}

public static class AccessPolicy
{
    /// <param name="owner">The project that owns the thing, or null when there is no such thing (not looked up for an admin).</param>
    public static AccessDecision Decide(Caller caller, string? owner, ApiKeyRole required)
    {
        // An admin may ask about anything; the endpoint itself says whether it exists.
        if (caller.IsAdmin)
        {
            return AccessDecision.Allowed;
        }

        if (owner is null)
        {
            return AccessDecision.NotFound;
        }

        if (!string.Equals(caller.Project, owner, StringComparison.Ordinal))
        {
            return AccessDecision.NotFound;
        }

        return caller.Role >= required ? AccessDecision.Allowed : AccessDecision.Forbidden;
    }

    /// <summary>A producer hands out keys of its own project up to its own role; only an admin makes admin keys.</summary>
    public static bool MayGrant(Caller caller, string? project, ApiKeyRole role) =>
        caller.IsAdmin || (role != ApiKeyRole.Admin && caller.Role >= ApiKeyRole.Producer && role <= caller.Role && string.Equals(caller.Project, project, StringComparison.Ordinal));
}
