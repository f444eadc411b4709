using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Coordinator.Access;

/// <summary>An audit line as the API shows it.</summary>
public sealed record AuditRecord(long Id, DateTime At, Guid? KeyId, string? KeyPrefix, string? Project, string Action, string Target, string Outcome);

/// <summary>A page of the audit log, newest first; <see cref="Before"/> is the id to pass for the next page.</summary>
public sealed record AuditPage(IReadOnlyList<AuditRecord> Entries, long? Before);

/// <summary>
/// The append-only audit log (the table refuses updates and deletes). Every action a key takes on the farm records
/// one line with its outcome: submissions, job and shot control, key changes; budgets, prices and approvals call
/// <see cref="RecordAsync"/> the same way.
/// </summary>
public sealed class AuditLog(IDbContextFactory<FarmDbContext> contextFactory, TimeProvider time)
{
    /// <param name="action">What was asked, as a dotted verb: <c>job.submit</c>, <c>job.cancel</c>, <c>key.create</c>.</param>
    /// <param name="target">What it was asked of: a job, shot or key id, or a name.</param>
    /// <param name="outcome"><c>ok</c>, or why not (<c>invalid</c>, <c>conflict: …</c>, <c>not-found</c>).</param>
    /// <remarks>
    /// Written after the action's own transaction: a process that dies between the two loses the line, never the
    /// action. It takes no cancellation token: a client that hangs up after the action must not erase its line.
    /// </remarks>
    public async Task RecordAsync(Caller? caller, string? project, string action, string target, string outcome)
    {
        await using var db = await contextFactory.CreateDbContextAsync(CancellationToken.None);
        db.AuditLog.Add(new AuditEntry
        {
            At = time.GetUtcNow().UtcDateTime,
            KeyId = caller?.KeyId,
            KeyPrefix = caller?.Prefix,
            Project = project,
            Action = action,
            Target = target,
            Outcome = outcome,
        });
        await db.SaveChangesAsync(CancellationToken.None);
    }

    /// <summary>A project's lines, or with <paramref name="project"/> null the farm's, newest first.</summary>
    public async Task<AuditPage> ListAsync(string? project, int limit, long? before, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var entries = db.AuditLog.AsNoTracking();
        if (project is not null)
        {
            entries = entries.Where(e => e.Project == project);
        }

        if (before is { } id)
        {
            entries = entries.Where(e => e.Id < id);
        }

        var page = await entries.OrderByDescending(e => e.Id).Take(limit + 1)
            .Select(e => new AuditRecord(e.Id, e.At, e.KeyId, e.KeyPrefix, e.Project, e.Action, e.Target, e.Outcome))
            .ToListAsync(cancellationToken);
        return page.Count > limit ? new AuditPage(page[..limit], page[limit - 1].Id) : new AuditPage(page, null);
    }
}
