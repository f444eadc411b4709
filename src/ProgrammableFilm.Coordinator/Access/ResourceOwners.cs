using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.Coordinator.Access;

/// <summary>Which project owns a job or a shot: what every access check asks before anything else is read.</summary>
public sealed class ResourceOwners(IDbContextFactory<FarmDbContext> contextFactory)
{
    public async Task<string?> OfJobAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await db.Jobs.Where(j => j.Id == jobId).Select(j => j.Project).SingleOrDefaultAsync(cancellationToken);
    }

    public async Task<string?> OfShotAsync(Guid shotId, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await db.Shots.Where(s => s.Id == shotId).Join(db.Jobs, s => s.JobId, j => j.Id, (_, j) => j.Project).SingleOrDefaultAsync(cancellationToken);
    }
}
