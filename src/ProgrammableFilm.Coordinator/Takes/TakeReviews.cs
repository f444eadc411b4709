using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Domain.Takes;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Coordinator.Takes;

/// <summary>Who reviews: an API key (its id, and name with prefix), or the local user in embedded mode.</summary>
public sealed record Reviewer(Guid? KeyId, string Name);

/// <summary>A shot's takes as the API and the dashboard show them, with its versions.</summary>
public sealed record ShotTakes(Guid ShotId, string Project, string Name, ShotVersionInfo? Current, IReadOnlyList<ShotVersionInfo> Versions, IReadOnlyList<TakeSummary> Takes);

public sealed record ShotVersionInfo(int Version, Guid TakeId, int TakeNumber, string ApprovedBy, DateTime ApprovedAt, string? Note);

/// <summary>One take: what it rendered, what it measured, what it cost, how it was reviewed, where to see it.</summary>
public sealed record TakeSummary(
    Guid Id,
    int Number,
    string Name,
    Guid JobId,
    string State,
    string Review,
    string? ReviewNote,
    string? ReviewedBy,
    DateTime? ReviewedAt,
    bool Current,
    VariantSpec? Overrides,
    Guid? ParentTakeId,
    TakeParameters Parameters,
    TakeMetrics Metrics,
    decimal Cost,
    double DeviceSeconds,
    int ReusedTasks,
    IReadOnlyList<TakeKeyframe> Keyframes,
    string? VideoUrl,
    string ManifestUrl);

public sealed record TakeParameters(string Prompt, string Engine, long Seed, double Guidance, int Steps, int KeyframeInterval, int Width, int Height, int Fps, int FrameCount);

/// <summary>
/// The take's feedback signals: flicker and seam error in 0..255 units (lower is steadier), prompt adherence 0..1
/// (higher follows the prompt better), and for a take of an anchored sequence its palette and object-colour drift from
/// the anchors in 0..255 units (lower is more consistent; null without that anchor).
/// </summary>
public sealed record TakeMetrics(double? Flicker, double? SeamError, double? PromptAdherence, double? AnchorPaletteDrift, double? AnchorColourDrift);

public sealed record TakeKeyframe(int Frame, string Url);

/// <summary>What a review did: the version it made, or why it could not.</summary>
public sealed record ReviewResult(ReviewOutcome Outcome, string? Message = null, int? Version = null);

public enum ReviewOutcome
{
    Done,
    NotFound,
    Conflict,
}

/// <summary>
/// Compare and decide: lists a shot's takes, approves one (a new numbered version; the highest is the shot's current
/// version), rejects takes with a note, and starts the next iteration from the approved take. Reviews rewrite the
/// affected takes' manifests and the contact sheet, so the files say what the database says.
/// </summary>
public sealed class TakeReviews(IDbContextFactory<FarmDbContext> contextFactory, ShotFinisher finisher, JobSubmission submission, ShotStorage storage, TimeProvider time)
{
    /// <summary>Every take of the shot that <paramref name="takeId"/> belongs to (any of its takes names it).</summary>
    public async Task<ShotTakes?> ListAsync(Guid takeId, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var lineage = await db.Shots.AsNoTracking().Where(s => s.Id == takeId).Select(s => (Guid?)s.LineageId).SingleOrDefaultAsync(cancellationToken);
        if (lineage is null)
        {
            return null;
        }

        var takes = await db.Shots.AsNoTracking().Where(s => s.LineageId == lineage).OrderBy(s => s.TakeNumber).ToListAsync(cancellationToken);
        var ids = takes.Select(t => t.Id).ToList();
        var project = await db.Jobs.AsNoTracking().Where(j => j.Id == takes[0].JobId).Select(j => j.Project).SingleAsync(cancellationToken);
        var usage = (await db.Usage.AsNoTracking().Where(u => ids.Contains(u.ShotId)).Select(u => new { u.ShotId, u.Cost, u.DeviceSeconds }).ToListAsync(cancellationToken))
            .GroupBy(u => u.ShotId).ToDictionary(g => g.Key, g => (Cost: g.Sum(u => u.Cost), DeviceSeconds: g.Sum(u => u.DeviceSeconds)));
        var reused = await db.TaskReuses.AsNoTracking().Where(r => ids.Contains(r.ShotId)).GroupBy(r => r.ShotId).Select(g => new { g.Key, Count = g.Count() })
            .ToDictionaryAsync(g => g.Key, g => g.Count, cancellationToken);
        var versions = await db.ShotVersions.AsNoTracking().Where(v => v.LineageId == lineage).OrderBy(v => v.Version).ToListAsync(cancellationToken);
        var numbers = takes.ToDictionary(t => t.Id, t => t.TakeNumber);
        var versionInfos = versions.Select(v => new ShotVersionInfo(v.Version, v.TakeId, numbers.GetValueOrDefault(v.TakeId), v.ApprovedBy, v.ApprovedAt, v.Note)).ToList();
        var current = versionInfos.LastOrDefault();
        var summaries = takes.Select(t => new TakeSummary(
            t.Id, t.TakeNumber, t.Name, t.JobId, t.State.ToString(), t.Review.ToString().ToLowerInvariant(), t.ReviewNote, t.ReviewedBy, t.ReviewedAt,
            current?.TakeId == t.Id,
            t.VariantJson is null ? null : JsonSerializer.Deserialize<VariantSpec>(t.VariantJson, SpecJson.Compact),
            t.ParentTakeId,
            new TakeParameters(t.Prompt, t.Engine, t.Seed, t.Guidance, t.Steps, t.KeyframeInterval, t.Width, t.Height, t.Fps, t.FrameCount),
            new TakeMetrics(t.Flicker, t.SeamError, t.PromptAdherence, t.AnchorPaletteDrift, t.AnchorColourDrift),
            usage.GetValueOrDefault(t.Id).Cost,
            usage.GetValueOrDefault(t.Id).DeviceSeconds,
            reused.GetValueOrDefault(t.Id),
            [.. ShotPlanner.Keyframes(t.FrameCount, t.KeyframeInterval).Where(k => t.FramesDeletedAt is null && storage.Exists(ShotStorage.FramePath(t.Folder, k))).Select(k => new TakeKeyframe(k, $"/api/shots/{t.Id}/frames/{k}"))],
            t.VideoPath is null ? null : $"/api/shots/{t.Id}/video",
            $"/api/shots/{t.Id}/manifest")).ToList();
        return new ShotTakes(lineage.Value, project, takes[0].ShotName, current, versionInfos, summaries);
    }

    /// <summary>The id of take <paramref name="number"/> of the shot <paramref name="takeId"/> belongs to.</summary>
    public async Task<Guid?> FindTakeAsync(Guid takeId, int number, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var lineage = db.Shots.Where(s => s.Id == takeId).Select(s => s.LineageId);
        return await db.Shots.Where(s => lineage.Contains(s.LineageId) && s.TakeNumber == number).Select(s => (Guid?)s.Id).SingleOrDefaultAsync(cancellationToken);
    }

    /// <summary>
    /// Makes a rendered take the shot's current version (a new version number) and, with
    /// <paramref name="rejectOthers"/>, rejects the shot's takes still pending with that note.
    /// </summary>
    public async Task<ReviewResult> ApproveAsync(Guid takeId, Reviewer reviewer, string? note, string? rejectOthers, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var take = await db.Shots.SingleOrDefaultAsync(s => s.Id == takeId, cancellationToken);
        if (take is null)
        {
            return new ReviewResult(ReviewOutcome.NotFound);
        }

        if (take.State != ShotState.Succeeded)
        {
            return new ReviewResult(ReviewOutcome.Conflict, $"take {take.TakeNumber} of {take.ShotName} is {take.State}; only a rendered take can be approved");
        }

        var now = time.GetUtcNow().UtcDateTime;
        List<Shot> rejected;
        int version;
        await using (var transaction = await db.Database.BeginTransactionAsync(cancellationToken))
        {
            var latest = await db.ShotVersions.Where(v => v.LineageId == take.LineageId).OrderByDescending(v => v.Version).FirstOrDefaultAsync(cancellationToken);
            if (latest?.TakeId == take.Id)
            {
                return new ReviewResult(ReviewOutcome.Conflict, $"take {take.TakeNumber} of {take.ShotName} is already the current version (v{latest.Version})");
            }

            version = (latest?.Version ?? 0) + 1;
            db.ShotVersions.Add(new ShotVersion { LineageId = take.LineageId, Version = version, TakeId = take.Id, ApprovedAt = now, ApprovedByKeyId = reviewer.KeyId, ApprovedBy = reviewer.Name, Note = note });
            (take.Review, take.ReviewNote, take.ReviewedBy, take.ReviewedAt) = (TakeReview.Approved, note, reviewer.Name, now);
            rejected = rejectOthers is null ? [] : await db.Shots.Where(s => s.LineageId == take.LineageId && s.Id != take.Id && s.Review == TakeReview.Pending).ToListAsync(cancellationToken);
            foreach (var other in rejected)
            {
                (other.Review, other.ReviewNote, other.ReviewedBy, other.ReviewedAt) = (TakeReview.Rejected, rejectOthers, reviewer.Name, now);
            }

            try
            {
                await db.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateException)
            {
                // The version's primary key: another approval of this shot committed first.
                return new ReviewResult(ReviewOutcome.Conflict, $"{take.ShotName} was approved by someone else at the same moment; list its takes and try again");
            }

            await transaction.CommitAsync(cancellationToken);
        }

        await RewriteAsync(db, [take, .. rejected], now, cancellationToken);
        return new ReviewResult(ReviewOutcome.Done, Version: version);
    }

    /// <summary>Rejects a take with a note; the current version cannot be rejected (approve another take instead).</summary>
    public async Task<ReviewResult> RejectAsync(Guid takeId, Reviewer reviewer, string note, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var take = await db.Shots.SingleOrDefaultAsync(s => s.Id == takeId, cancellationToken);
        if (take is null)
        {
            return new ReviewResult(ReviewOutcome.NotFound);
        }

        var current = await db.ShotVersions.Where(v => v.LineageId == take.LineageId).OrderByDescending(v => v.Version).Select(v => (Guid?)v.TakeId).FirstOrDefaultAsync(cancellationToken);
        if (current == take.Id)
        {
            return new ReviewResult(ReviewOutcome.Conflict, $"take {take.TakeNumber} of {take.ShotName} is the current version; approve another take instead");
        }

        var now = time.GetUtcNow().UtcDateTime;
        (take.Review, take.ReviewNote, take.ReviewedBy, take.ReviewedAt) = (TakeReview.Rejected, note, reviewer.Name, now);
        await db.SaveChangesAsync(cancellationToken);
        await RewriteAsync(db, [take], now, cancellationToken);
        return new ReviewResult(ReviewOutcome.Done);
    }

    /// <summary>
    /// The next iteration, in one call: a job whose takes are <paramref name="variants"/> applied to the shot's
    /// current version. Null with a conflict message when no take is approved yet; the spec's errors otherwise.
    /// </summary>
    public async Task<(Job? Job, SpecReadResult? Invalid, string? Conflict)> IterateAsync(Guid takeId, SpecNode? variants, string? lane, int? priority, bool preview, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var take = await db.Shots.AsNoTracking().SingleOrDefaultAsync(s => s.Id == takeId, cancellationToken);
        if (take is null)
        {
            return (null, null, null);
        }

        var currentId = await db.ShotVersions.Where(v => v.LineageId == take.LineageId).OrderByDescending(v => v.Version).Select(v => (Guid?)v.TakeId).FirstOrDefaultAsync(cancellationToken);
        if (currentId is null)
        {
            return (null, null, $"{take.ShotName} has no approved take yet; an iteration starts from the approved take");
        }

        var approved = await db.Shots.AsNoTracking().SingleAsync(s => s.Id == currentId, cancellationToken);
        var project = await db.Jobs.AsNoTracking().Where(j => j.Id == approved.JobId).Select(j => j.Project).SingleAsync(cancellationToken);
        var spec = Iteration.Build(project, JobSubmission.SpecOf(approved), variants, lane, priority);
        if (!spec.IsValid)
        {
            return (null, spec, null);
        }

        var job = await submission.SubmitAsync(preview ? PreviewPolicy.Apply(spec.Spec!) : spec.Spec!, cancellationToken, new TakeLineage(approved.LineageId, approved.Id));
        return (job, null, null);
    }

    private async Task RewriteAsync(FarmDbContext db, IReadOnlyList<Shot> takes, DateTime now, CancellationToken cancellationToken)
    {
        foreach (var take in takes.Where(t => t.State == ShotState.Succeeded))
        {
            await finisher.WriteManifestAsync(db, take, now, cancellationToken);
        }

        var sheets = await db.Shots.AsNoTracking().Where(s => s.LineageId == takes[0].LineageId && s.Name != s.ShotName).Select(s => new { s.JobId, s.ShotName }).Distinct().ToListAsync(cancellationToken);
        foreach (var sheet in sheets)
        {
            await ContactSheet.WriteAsync(db, storage, sheet.JobId, sheet.ShotName, takes[0].LineageId, cancellationToken);
        }
    }
}
