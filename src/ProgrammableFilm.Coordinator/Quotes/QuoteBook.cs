using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Costs;
using ProgrammableFilm.Domain.Money;
using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Coordinator.Quotes;

/// <summary>A quote as the API answers it: the job's figures and each take's.</summary>
public sealed record QuoteView(
    string Project,
    string DeviceSku,
    decimal DollarsPerHour,
    double DeviceSeconds,
    double LowDeviceSeconds,
    double HighDeviceSeconds,
    decimal CostUsd,
    decimal LowUsd,
    decimal HighUsd,
    double EnergyKwh,
    double? WallSeconds,
    int LiveDevices,
    IReadOnlyList<TakeQuoteView> Shots);

/// <summary>One take of a quote: its kind, where its rates came from (<c>history</c>, <c>prior</c> or both) and its figures.</summary>
public sealed record TakeQuoteView(string Name, string Kind, string Basis, int HistoryShots, double DeviceSeconds, decimal CostUsd, decimal LowUsd, decimal HighUsd);

/// <summary>
/// A job's stored quote against what it cost: <see cref="ActualCostUsd"/> and <see cref="ErrorFraction"/>
/// ((actual − quoted) / quoted) are null until the job finishes.
/// </summary>
public sealed record JobQuoteView(
    Guid JobId,
    DateTime QuotedAt,
    string DeviceSku,
    decimal CostUsd,
    decimal LowUsd,
    decimal HighUsd,
    decimal? ActualCostUsd,
    double? ErrorFraction,
    double DeviceSeconds,
    double? ActualDeviceSeconds,
    double? WallSeconds,
    double EnergyKwh,
    DateTime? FinishedAt);

/// <summary>How good a project's quotes are, per kind of take: only takes that succeeded count.</summary>
public sealed record QuoteAccuracy(string Project, IReadOnlyList<KindAccuracy> Kinds);

/// <summary>
/// One kind's accuracy: every finished take's median absolute error, and that of the takes quoted once the kind had
/// <see cref="QuoteBook.SettledAfter"/> finished shots of history (the target: under 10%). Bias is the
/// median signed error (positive: quotes too low).
/// </summary>
public sealed record KindAccuracy(string Kind, int Shots, double? MedianAbsError, double? MedianError, int SettledShots, double? SettledMedianAbsError);

/// <summary>
/// Quotes: made for a spec (<c>POST /api/projects/{p}/quotes</c> and every submission, which stores it), settled when
/// the job ends (the ledger's cost against the quote), and summarised per kind.
/// </summary>
public sealed class QuoteBook(IDbContextFactory<FarmDbContext> contextFactory, Money.PriceBookCache priceBook, CoordinatorOptions options, TimeProvider time)
{
    /// <summary>Shots of history after which a kind's quotes count as settled in the accuracy report.</summary>
    public const int SettledAfter = 20;

    /// <summary>The newest ledger rows of the project the rates are drawn from.</summary>
    private const int HistoryRows = 4000;

    /// <summary>Brings this coordinator's copy of the price book up to date (on a new farm, writing its first prices).</summary>
    public async Task ReadPricesAsync(CancellationToken cancellationToken) => await priceBook.CurrentAsync(cancellationToken);

    public async Task<(QuoteFigures Figures, int LiveDevices)> QuoteAsync(FarmDbContext db, JobSpec spec, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var takes = spec.Shots.SelectMany(TakeWork.Of).ToList();
        var engines = takes.Select(t => t.Kind.Engine).Distinct(StringComparer.Ordinal).ToList();
        var liveSince = now - options.LeaseDuration;
        var live = await db.Workers.AsNoTracking().Where(w => w.LastSeenAt >= liveSince)
            .Select(w => new { w.DeviceSku, w.DeviceCount, w.Slots, w.Engines }).ToListAsync(cancellationToken);
        var able = live.Where(w => w.Engines is null || engines.All(e => w.Engines.Split(',', StringSplitOptions.TrimEntries).Contains(e, StringComparer.Ordinal))).ToList();
        var history = await HistoryAsync(db, spec.Project, cancellationToken);
        var book = await priceBook.CurrentAsync(cancellationToken);
        DevicePrice? PriceOf(string deviceSku) =>
            book.PriceFor(deviceSku, spec.Project, now) is { } entry ? new DevicePrice(entry.Sku, entry.DollarsPerHour, entry.RatedWatts) : null;

        // The devices the job will most likely run on: the SKU with the most live devices able to run it, else the
        // one the project's history ran on, else the CPU.
        var sku = able.GroupBy(w => w.DeviceSku, StringComparer.Ordinal).OrderByDescending(g => g.Sum(w => w.DeviceCount)).Select(g => g.Key).FirstOrDefault(s => PriceOf(s) is not null)
            ?? history.GroupBy(h => h.Sku, StringComparer.Ordinal).OrderByDescending(g => g.Count()).Select(g => g.Key).FirstOrDefault(s => PriceOf(s) is not null)
            ?? "cpu";
        var price = PriceOf(sku) ?? options.Prices.Prices.First();
        var samples = (history.Any(h => h.Sku == price.Sku) ? history.Where(h => h.Sku == price.Sku) : history).Select(h => h.Sample).ToList();
        var onSku = able.Where(w => w.DeviceSku == price.Sku).ToList();
        var fleet = onSku.Count == 0 ? null : new FleetCapacity(onSku.Sum(w => w.DeviceCount), onSku.Average(w => w.DeviceCount / (double)Math.Max(1, w.Slots)));
        return (QuoteModel.Quote(takes, samples, price, fleet), fleet?.Devices ?? 0);
    }

    public static QuoteView View(string project, QuoteFigures figures, int liveDevices) => new(
        project,
        figures.DeviceSku,
        figures.DollarsPerHour,
        figures.DeviceSeconds,
        figures.LowDeviceSeconds,
        figures.HighDeviceSeconds,
        figures.Cost,
        figures.LowCost,
        figures.HighCost,
        figures.EnergyKwh,
        figures.WallSeconds,
        liveDevices,
        [.. figures.Takes.Select(t => new TakeQuoteView(t.Work.Name, t.Work.Kind.ToString(), t.Basis, t.HistoryShots, t.DeviceSeconds,
            CostCalculator.Cost(t.DeviceSeconds, figures.DollarsPerHour), CostCalculator.Cost(t.LowDeviceSeconds, figures.DollarsPerHour), CostCalculator.Cost(t.HighDeviceSeconds, figures.DollarsPerHour)))]);

    /// <summary>A quote for a spec, writing nothing.</summary>
    public async Task<QuoteView> QuoteAsync(JobSpec spec, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var (figures, devices) = await QuoteAsync(db, spec, cancellationToken);
        return View(spec.Project, figures, devices);
    }

    /// <summary>
    /// Adds the job's quote and its takes' to the submission's context, for its <c>SaveChanges</c>;
    /// <paramref name="takes"/> are the take rows in the order of <see cref="QuoteFigures.Takes"/>.
    /// </summary>
    public static void Record(FarmDbContext db, Job job, IReadOnlyList<Shot> takes, QuoteFigures figures, DateTime now)
    {
        db.JobQuotes.Add(new JobQuote
        {
            JobId = job.Id,
            Project = job.Project,
            QuotedAt = now,
            DeviceSku = figures.DeviceSku,
            DollarsPerHour = figures.DollarsPerHour,
            DeviceSeconds = figures.DeviceSeconds,
            LowDeviceSeconds = figures.LowDeviceSeconds,
            HighDeviceSeconds = figures.HighDeviceSeconds,
            Cost = figures.Cost,
            LowCost = figures.LowCost,
            HighCost = figures.HighCost,
            EnergyKwh = figures.EnergyKwh,
            WallSeconds = figures.WallSeconds,
        });
        foreach (var (shot, estimate) in takes.Zip(figures.Takes))
        {
            db.ShotQuotes.Add(new ShotQuote
            {
                ShotId = shot.Id,
                JobId = job.Id,
                Project = job.Project,
                Kind = estimate.Work.Kind.ToString(),
                Basis = estimate.Basis,
                HistoryShots = estimate.HistoryShots,
                DeviceSeconds = estimate.DeviceSeconds,
                Cost = CostCalculator.Cost(estimate.DeviceSeconds, figures.DollarsPerHour),
                LowCost = CostCalculator.Cost(estimate.LowDeviceSeconds, figures.DollarsPerHour),
                HighCost = CostCalculator.Cost(estimate.HighDeviceSeconds, figures.DollarsPerHour),
            });
        }
    }

    /// <summary>
    /// Settles a finished job's quote against the ledger as it stands in the finishing transaction (every attempt of
    /// the job has reported by then; a late report of a lost attempt bills nothing more). A retried job is settled
    /// again when it ends again. Jobs submitted before quotes existed have none and are skipped.
    /// </summary>
    public static async Task SettleAsync(FarmDbContext db, Guid jobId, DateTime now, CancellationToken cancellationToken)
    {
        var quote = await db.JobQuotes.SingleOrDefaultAsync(q => q.JobId == jobId, cancellationToken);
        if (quote is null)
        {
            return;
        }

        // The error compares money before rounding (device-seconds × the price billed, against the quote's
        // device-seconds × its price): a CPU shot costs a few micro-dollars, and rounding each side to a micro-dollar
        // would otherwise be most of its "error".
        var usage = await db.UsageRollups.AsNoTracking().Where(r => r.JobId == jobId)
            .Select(r => new { r.ShotId, r.CostMicros, r.DeviceSeconds, r.DollarsPerHour }).ToListAsync(cancellationToken);
        var byShot = usage.GroupBy(u => u.ShotId).ToDictionary(g => g.Key, g => (
            Billed: g.Sum(u => u.CostMicros) / 1_000_000m,
            Exact: g.Sum(u => (decimal)u.DeviceSeconds * u.DollarsPerHour / 3600m),
            DeviceSeconds: g.Sum(u => u.DeviceSeconds)));
        quote.ActualCost = usage.Sum(u => u.CostMicros) / 1_000_000m;
        quote.ActualDeviceSeconds = usage.Sum(u => u.DeviceSeconds);
        quote.ErrorFraction = QuoteModel.ErrorFraction((decimal)quote.DeviceSeconds * quote.DollarsPerHour / 3600m, byShot.Values.Sum(s => s.Exact));
        quote.FinishedAt = now;
        foreach (var shot in await db.ShotQuotes.Where(q => q.JobId == jobId).ToListAsync(cancellationToken))
        {
            var actual = byShot.TryGetValue(shot.ShotId, out var found) ? found : (Billed: 0m, Exact: 0m, DeviceSeconds: 0d);
            shot.ActualCost = actual.Billed;
            shot.ActualDeviceSeconds = actual.DeviceSeconds;
            shot.ErrorFraction = QuoteModel.ErrorFraction((decimal)shot.DeviceSeconds * quote.DollarsPerHour / 3600m, actual.Exact);
            shot.FinishedAt = now;
        }

        await db.SaveChangesAsync(cancellationToken);
    }

    public async Task<JobQuoteView?> ForJobAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var q = await db.JobQuotes.AsNoTracking().SingleOrDefaultAsync(q => q.JobId == jobId, cancellationToken);
        return q is null ? null : new JobQuoteView(q.JobId, q.QuotedAt, q.DeviceSku, q.Cost, q.LowCost, q.HighCost, q.ActualCost, q.ErrorFraction, q.DeviceSeconds, q.ActualDeviceSeconds, q.WallSeconds, q.EnergyKwh, q.FinishedAt);
    }

    /// <summary>Per kind, over the project's takes that succeeded; the newest 1,000 of each kind.</summary>
    public async Task<QuoteAccuracy> AccuracyAsync(string project, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var rows = await (
            from q in db.ShotQuotes.AsNoTracking()
            where q.Project == project && q.ErrorFraction != null
            join s in db.Shots.AsNoTracking() on q.ShotId equals s.Id
            where s.State == ShotState.Succeeded
            orderby q.FinishedAt descending
            select new { q.Kind, q.HistoryShots, Error = q.ErrorFraction!.Value })
            .Take(20_000)
            .ToListAsync(cancellationToken);
        var kinds = rows.GroupBy(r => r.Kind, StringComparer.Ordinal)
            .Select(g =>
            {
                var recent = g.Take(1000).ToList();
                var settled = recent.Where(r => r.HistoryShots >= SettledAfter).Select(r => r.Error).ToList();
                var signed = recent.Select(r => r.Error).Order().ToList();
                return new KindAccuracy(g.Key, recent.Count, QuoteModel.MedianAbsolute(signed), QuoteModel.Quantile(signed, 0.5), settled.Count, QuoteModel.MedianAbsolute(settled));
            })
            .OrderBy(k => k.Kind, StringComparer.Ordinal)
            .ToList();
        return new QuoteAccuracy(project, kinds);
    }

    private sealed record HistoryRow(string Sku, TaskSample Sample);

    /// <summary>
    /// The project's finished tasks among its newest ledger rows, newest first, each with all its attempts' device
    /// time (retries are part of what a task costs). Only tasks of shots that succeeded: a running shot's tasks may
    /// still be billed more.
    /// </summary>
    private static async Task<List<HistoryRow>> HistoryAsync(FarmDbContext db, string project, CancellationToken cancellationToken)
    {
        var ledger = await db.Usage.AsNoTracking().Where(u => u.Project == project).OrderByDescending(u => u.RecordedAt)
            .Select(u => new { u.TaskId, u.DeviceSku, u.DeviceSeconds, u.RecordedAt })
            .Take(HistoryRows)
            .ToListAsync(cancellationToken);
        var taskIds = ledger.Select(u => u.TaskId).Distinct().ToList();
        if (taskIds.Count == 0)
        {
            return [];
        }

        // The tasks by their keys, then their shots: as one join, a plan made for a few ids (a prepared statement's
        // generic plan guesses ten) probed every task id once per succeeded shot, 0.5-0.6 s of each submission with
        // 4,000 ids and 92 shots (docs/performance.md, session 25).
        var tasks = await db.Tasks.AsNoTracking()
            .Where(t => taskIds.Contains(t.Id) && t.State == RenderTaskState.Succeeded)
            .Select(t => new { t.Id, t.Kind, t.FirstFrame, t.LastFrame, t.ShotId })
            .ToListAsync(cancellationToken);
        var shotIds = tasks.Select(t => t.ShotId).Distinct().ToList();
        var shots = await db.Shots.AsNoTracking()
            .Where(s => shotIds.Contains(s.Id) && s.State == ShotState.Succeeded)
            .Select(s => new { s.Id, s.Engine, s.Width, s.Height, s.Steps })
            .ToDictionaryAsync(s => s.Id, cancellationToken);
        var finished = tasks.Where(t => shots.ContainsKey(t.ShotId)).ToDictionary(t => t.Id);
        return [.. ledger.GroupBy(u => u.TaskId)
            .Where(g => finished.ContainsKey(g.Key))
            .OrderByDescending(g => g.Max(u => u.RecordedAt))
            .Select(g =>
            {
                var t = finished[g.Key];
                var s = shots[t.ShotId];
                var kind = new QuoteKind(s.Engine, s.Width, s.Height, Domain.Takes.EngineInputs.ReadsSampler(s.Engine) ? s.Steps : null);
                var taskKind = Enum.Parse<TaskKind>(t.Kind, ignoreCase: true);
                return new HistoryRow(g.First().DeviceSku, new TaskSample(kind, taskKind, t.ShotId, t.LastFrame - t.FirstFrame + 1, g.Sum(u => u.DeviceSeconds)));
            })];
    }
}
