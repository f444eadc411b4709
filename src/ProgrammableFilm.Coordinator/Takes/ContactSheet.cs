using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Coordinator.Takes;

/// <summary>
/// <c>takes.html</c> beside a shot's takes: every take of the shot (earlier iterations included) side by side with its
/// keyframe strip, player, metrics, cost and review. It needs no server: links are relative to the file, so the
/// folder of an embedded render opens in any browser. Rewritten whenever a take finishes or is reviewed.
/// </summary>
public static class ContactSheet
{
    public static async Task WriteAsync(FarmDbContext db, ShotStorage storage, Guid jobId, string shotName, Guid lineageId, CancellationToken cancellationToken)
    {
        var takes = await db.Shots.AsNoTracking().Where(s => s.LineageId == lineageId).OrderBy(s => s.TakeNumber).ToListAsync(cancellationToken);
        var ids = takes.Select(t => t.Id).ToList();
        var costs = (await db.Usage.AsNoTracking().Where(u => ids.Contains(u.ShotId)).Select(u => new { u.ShotId, u.Cost }).ToListAsync(cancellationToken))
            .GroupBy(u => u.ShotId).ToDictionary(g => g.Key, g => g.Sum(u => u.Cost));
        var current = await db.ShotVersions.AsNoTracking().Where(v => v.LineageId == lineageId).OrderByDescending(v => v.Version).FirstOrDefaultAsync(cancellationToken);

        static string E(string? text) => WebUtility.HtmlEncode(text ?? "");
        static string F(double? value) => value is { } v ? v.ToString("F3", CultureInfo.InvariantCulture) : "–";
        var html = new StringBuilder();
        html.Append(CultureInfo.InvariantCulture, $"<!doctype html><html><head><meta charset=\"utf-8\"><title>{E(shotName)}: takes</title><style>")
            .Append("body{font:14px system-ui,sans-serif;margin:1.5em}.takes{display:flex;flex-wrap:wrap;gap:1em}")
            .Append(".take{border:1px solid #ccc;border-radius:6px;padding:.8em;width:340px}.take.current{border:3px solid #2a7}")
            .Append(".strip{display:flex;gap:2px;overflow-x:auto}.strip img{height:48px}video{width:100%}td{padding:0 .6em 0 0}</style></head><body>")
            .Append(CultureInfo.InvariantCulture, $"<h1>{E(shotName)}</h1><p>{takes.Count} take(s); current version: {(current is null ? "none approved yet" : $"v{current.Version} (take {takes.FirstOrDefault(t => t.Id == current.TakeId)?.TakeNumber}), approved by {E(current.ApprovedBy)} at {current.ApprovedAt:u}")}</p><div class=\"takes\">");
        foreach (var take in takes)
        {
            // Relative to this file, two folders below the storage root ({job}/{shot}/takes.html).
            var folder = $"../../{take.Folder}";
            html.Append(CultureInfo.InvariantCulture, $"<div class=\"take{(current?.TakeId == take.Id ? " current" : "")}\" data-take=\"{take.TakeNumber}\"><h2>Take {take.TakeNumber}</h2>")
                .Append(CultureInfo.InvariantCulture, $"<p>{E(take.State.ToString())}, review: <b>{E(take.Review.ToString().ToLowerInvariant())}</b>{(take.ReviewNote is null ? "" : $" ({E(take.ReviewNote)})")}</p>")
                .Append(CultureInfo.InvariantCulture, $"<p><code>{E(take.VariantJson ?? "the shot as specified")}</code></p><div class=\"strip\">");
            foreach (var keyframe in ShotPlanner.Keyframes(take.FrameCount, take.KeyframeInterval).Where(k => storage.Exists(ShotStorage.FramePath(take.Folder, k))))
            {
                html.Append(CultureInfo.InvariantCulture, $"<img alt=\"keyframe {keyframe}\" src=\"{folder}/frames/{keyframe:D5}.png\">");
            }

            html.Append("</div>");
            if (take.VideoPath is not null)
            {
                html.Append(CultureInfo.InvariantCulture, $"<video controls loop src=\"../../{take.VideoPath}\"></video>");
            }

            html.Append(CultureInfo.InvariantCulture, $"<table><tr><td>seed</td><td>{take.Seed}</td><td>guidance</td><td>{take.Guidance.ToString(CultureInfo.InvariantCulture)}</td></tr>")
                .Append(CultureInfo.InvariantCulture, $"<tr><td>steps</td><td>{take.Steps}</td><td>keyframes every</td><td>{take.KeyframeInterval}</td></tr>")
                .Append(CultureInfo.InvariantCulture, $"<tr><td>flicker</td><td>{F(take.Flicker)}</td><td>seam error</td><td>{F(take.SeamError)}</td></tr>")
                .Append(CultureInfo.InvariantCulture, $"<tr><td>prompt adherence</td><td>{F(take.PromptAdherence)}</td><td>cost (USD)</td><td>{costs.GetValueOrDefault(take.Id).ToString("F6", CultureInfo.InvariantCulture)}</td></tr>")
                .Append(take.AnchorPaletteDrift is null && take.AnchorColourDrift is null ? "" : $"<tr><td>palette drift</td><td>{F(take.AnchorPaletteDrift)}</td><td>colour drift</td><td>{F(take.AnchorColourDrift)}</td></tr>")
                .Append("</table>")
                .Append(CultureInfo.InvariantCulture, $"<p><a href=\"{folder}/manifest.json\">manifest</a> · <code>pfilm approve {take.Id}</code></p></div>");
        }

        html.Append("</div></body></html>");
        await storage.WriteAtomicAsync(ShotStorage.ContactSheetPath(jobId, shotName), Encoding.UTF8.GetBytes(html.ToString()), cancellationToken);
    }
}
