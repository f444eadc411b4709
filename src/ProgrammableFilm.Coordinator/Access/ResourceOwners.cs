using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.Coordinator.Access;

/// <summary>
/// Which project owns a job or a shot: what every access check asks before anything else is read. A job's project is
/// fixed when it is submitted and jobs are never deleted, so an owner once read is kept (up to
/// <see cref="RememberedOwners"/> ids of each kind, then forgotten all at once) and a request's check costs no round
/// trip; an id not found is asked again every time.
/// </summary>
public sealed class ResourceOwners(IDbContextFactory<FarmDbContext> contextFactory)
{
    private const int RememberedOwners = 100_000;

    private readonly ConcurrentDictionary<Guid, string> _jobs = new();
    private readonly ConcurrentDictionary<Guid, string> _shots = new();

    public Task<string?> OfJobAsync(Guid jobId, CancellationToken cancellationToken) =>
        OwnerAsync(_jobs, jobId, db => db.Jobs.Where(j => j.Id == jobId).Select(j => j.Project), cancellationToken);

    public Task<string?> OfShotAsync(Guid shotId, CancellationToken cancellationToken) =>
        OwnerAsync(_shots, shotId, db => db.Shots.Where(s => s.Id == shotId).Join(db.Jobs, s => s.JobId, j => j.Id, (_, j) => j.Project), cancellationToken);

    private async Task<string?> OwnerAsync(ConcurrentDictionary<Guid, string> owners, Guid id, Func<FarmDbContext, IQueryable<string>> query, CancellationToken cancellationToken)
    {
        if (owners.TryGetValue(id, out var known))
        {
            return known;
        }

        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var project = await query(db).SingleOrDefaultAsync(cancellationToken);
        if (project is not null)
        {
            if (owners.Count >= RememberedOwners)
            {
                owners.Clear();
            }

            owners[id] = project;
        }

        return project;
    }
}
