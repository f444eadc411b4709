using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Scheduling;

namespace ProgrammableFilm.Coordinator;

/// <summary>A project's fair-share weight and what it holds of the fleet right now.</summary>
public sealed record ProjectShareStatus(string Project, double Weight, int LiveAttempts, int FleetLiveAttempts);

/// <summary>Reads and sets the projects' weights in the fair share of the fleet (see <see cref="FairShare"/>).</summary>
public sealed class ProjectShares(IDbContextFactory<FarmDbContext> contextFactory, Dispatcher dispatcher, DispatchSignal signal, TimeProvider time)
{
    /// <summary>The largest weight: a ratio of a million to one between two projects is already "only this one".</summary>
    public const double MaxWeight = 1_000_000;

    public async Task<ProjectShareStatus> GetAsync(string project, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var weight = await db.ProjectShares.Where(s => s.Project == project).Select(s => (double?)s.Weight).SingleOrDefaultAsync(cancellationToken) ?? FairShare.DefaultWeight;
        var live = await Dispatcher.LiveAttemptsByProjectAsync(db, cancellationToken);
        return new ProjectShareStatus(project, weight, live.GetValueOrDefault(project), live.Values.Sum());
    }

    /// <summary>Sets the weight; the dispatcher's next pass uses it. Throws <see cref="ArgumentOutOfRangeException"/> for a weight that is not a positive number up to <see cref="MaxWeight"/>.</summary>
    public async Task<ProjectShareStatus> SetAsync(string project, double weight, CancellationToken cancellationToken)
    {
        if (!double.IsFinite(weight) || weight <= 0 || weight > MaxWeight)
        {
            throw new ArgumentOutOfRangeException(nameof(weight), weight, $"weight must be a number above 0 and at most {MaxWeight:0}");
        }

        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        var updated = await db.ProjectShares.Where(s => s.Project == project)
            .ExecuteUpdateAsync(set => set.SetProperty(s => s.Weight, weight).SetProperty(s => s.UpdatedAt, now), cancellationToken);
        if (updated == 0)
        {
            db.ProjectShares.Add(new ProjectShare { Project = project, Weight = weight, UpdatedAt = now });
            try
            {
                await db.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateException)
            {
                // Another request created the row meanwhile: the last write wins, as it would have without the race.
                db.ChangeTracker.Clear();
                await db.ProjectShares.Where(s => s.Project == project)
                    .ExecuteUpdateAsync(set => set.SetProperty(s => s.Weight, weight).SetProperty(s => s.UpdatedAt, now), cancellationToken);
            }
        }

        dispatcher.ForgetFleetView();
        signal.Wake();
        return await GetAsync(project, cancellationToken);
    }
}
