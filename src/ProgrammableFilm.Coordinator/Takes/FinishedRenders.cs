using System.Diagnostics.CodeAnalysis;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Takes;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Coordinator.Takes;

/// <summary>
/// The keyframes and segments that earlier takes of a shot have already rendered, by what an engine reads to render
/// them (<see cref="RenderKey"/>): an iteration copies those frames into its takes instead of rendering and billing
/// them again, the way takes of one sweep share them.
/// </summary>
public sealed class FinishedRenders
{
    private readonly Dictionary<RenderKey, FinishedRender> _byKey;

    private FinishedRenders(Dictionary<RenderKey, FinishedRender> byKey) => _byKey = byKey;

    public static FinishedRenders None { get; } = new([]);

    public bool TryFind(RenderKey key, [NotNullWhen(true)] out FinishedRender? render) => _byKey.TryGetValue(key, out render);

    /// <summary>The succeeded work of the lineage's succeeded takes whose frames are still in storage.</summary>
    public static async Task<FinishedRenders> LoadAsync(FarmDbContext db, ShotStorage storage, Guid lineageId, CancellationToken cancellationToken)
    {
        var takes = await db.Shots.AsNoTracking().Where(s => s.LineageId == lineageId && s.State == ShotState.Succeeded).ToListAsync(cancellationToken);
        var ids = takes.Select(t => t.Id).ToList();
        var rows = await db.Tasks.AsNoTracking()
            .Where(t => ids.Contains(t.ShotId) && t.State == RenderTaskState.Succeeded && (t.Kind == "keyframe" || t.Kind == "segment"))
            .ToListAsync(cancellationToken);
        var byTake = rows.ToLookup(t => t.ShotId);
        var found = new Dictionary<RenderKey, FinishedRender>();
        foreach (var take in takes)
        {
            var spec = JobSubmission.SpecOf(take);
            var planned = ShotPlanner.Plan(spec).ToDictionary(p => p.Key, StringComparer.Ordinal);
            foreach (var row in byTake[take.Id])
            {
                var frames = Enumerable.Range(row.FirstFrame, row.LastFrame - row.FirstFrame + 1).ToList();
                // Frames deleted from storage since (retention, an operator) are rendered again.
                if (planned.TryGetValue(row.Key, out var task) && frames.All(f => storage.Exists(ShotStorage.FramePath(take.Folder, f))))
                {
                    found.TryAdd(RenderKey.Of(spec, task), new FinishedRender(row, take.Folder, frames));
                }
            }
        }

        return new FinishedRenders(found);
    }
}

/// <summary>A succeeded task of an earlier take, the folder its frames are in, and those frames.</summary>
public sealed record FinishedRender(RenderTask Task, string Folder, IReadOnlyList<int> Frames);

/// <summary>A frame an iteration takes from an earlier take's folder.</summary>
public sealed record FrameCopy(string Source, string Target);
