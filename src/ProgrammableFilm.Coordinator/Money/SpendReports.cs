using System.Globalization;
using System.Text;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Money;

namespace ProgrammableFilm.Coordinator.Money;

/// <summary>How a spend report groups the ledger.</summary>
public enum SpendGrouping
{
    /// <summary>Per UTC day of billing (<c>2026-12-01</c>).</summary>
    Day,

    /// <summary>Per device SKU.</summary>
    Sku,

    /// <summary>Per shot (take), labelled <c>job name / shot name</c>.</summary>
    Shot,

    /// <summary>Per job, labelled with its name.</summary>
    Job,
}

/// <summary>One group of a spend report: the ledger rows billed in it, summed.</summary>
public sealed record SpendLine(string Key, string? Label, int Attempts, double DeviceSeconds, decimal CostUsd, double EnergyKwh, double Co2eGrams);

/// <summary>
/// A project's spend in [<see cref="From"/>, <see cref="To"/>) (open ends when null), grouped. <see cref="Total"/> is the
/// exact sum of the lines: costs are added as whole micro-dollars, never rounded again.
/// </summary>
public sealed record SpendReport(string Project, string GroupBy, DateTime? From, DateTime? To, string Currency, SpendLine Total, IReadOnlyList<SpendLine> Lines);

/// <summary>Spend reports, aggregated in the database on both providers (micro-dollar sums: SQLite keeps money as text).</summary>
public sealed class SpendReports(IDbContextFactory<FarmDbContext> contextFactory)
{
    private const double JoulesPerKilowattHour = 3.6e6;

    public async Task<SpendReport> ReportAsync(string project, SpendGrouping grouping, DateTime? from, DateTime? to, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var postgres = db.Database.IsNpgsql();
        // The key expression comes from this switch, never from the request.
        var key = (grouping, postgres) switch
        {
            (SpendGrouping.Day, true) => "to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            (SpendGrouping.Day, false) => "substr(recorded_at, 1, 10)",
            (SpendGrouping.Sku, _) => "device_sku",
            (SpendGrouping.Shot, true) => "shot_id::text",
            (SpendGrouping.Shot, false) => "lower(shot_id)",
            (SpendGrouping.Job, true) => "job_id::text",
            _ => "lower(job_id)",
        };
        var costMicros = postgres ? "sum((cost * 1000000)::bigint)::bigint" : "sum(CAST(round(CAST(cost AS REAL) * 1000000) AS INTEGER))";
        var sql = $$"""
            SELECT {{key}} AS "Key", count(*) AS "Attempts", sum(device_seconds) AS "DeviceSeconds", {{costMicros}} AS "CostMicros",
                   sum(energy_joules) AS "EnergyJoules", coalesce(sum(co2e_grams), 0) AS "Co2eGrams"
            FROM usage_ledger
            WHERE project = {0} AND recorded_at >= {1} AND recorded_at < {2}
            GROUP BY 1 ORDER BY 1
            """;
        var rows = await db.Database.SqlQueryRaw<Row>(sql, project, from ?? DateTime.UnixEpoch, to ?? new DateTime(9999, 1, 1, 0, 0, 0, DateTimeKind.Utc))
            .ToListAsync(cancellationToken);
        var labels = await LabelsAsync(db, grouping, rows.Select(r => r.Key).ToList(), cancellationToken);
        var lines = rows.Select(r => new SpendLine(r.Key, labels.GetValueOrDefault(r.Key), (int)r.Attempts, r.DeviceSeconds, MoneyMath.FromMicros(r.CostMicros), r.EnergyJoules / JoulesPerKilowattHour, r.Co2eGrams)).ToList();
        var total = new SpendLine(
            "total",
            null,
            lines.Sum(l => l.Attempts),
            rows.Sum(r => r.DeviceSeconds),
            MoneyMath.FromMicros(rows.Sum(r => r.CostMicros)),
            rows.Sum(r => r.EnergyJoules) / JoulesPerKilowattHour,
            rows.Sum(r => r.Co2eGrams));
        return new SpendReport(project, grouping.ToString().ToLowerInvariant(), from, to, "USD", total, lines);
    }

    /// <summary>The report as CSV (RFC 4180): a header, one line per group, then the total; costs with six decimals.</summary>
    public static string ToCsv(SpendReport report)
    {
        var csv = new StringBuilder("key,label,attempts,device_seconds,cost_usd,energy_kwh,co2e_grams\r\n");
        foreach (var line in report.Lines.Append(report.Total))
        {
            csv.Append(CultureInfo.InvariantCulture, $"{Quote(line.Key)},{Quote(line.Label ?? "")},{line.Attempts},{line.DeviceSeconds:0.###},{line.CostUsd:0.000000},{line.EnergyKwh:0.######},{line.Co2eGrams:0.###}\r\n");
        }

        return csv.ToString();
    }

    private static string Quote(string field) =>
        field.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? $"\"{field.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : field;

    private static async Task<Dictionary<string, string>> LabelsAsync(FarmDbContext db, SpendGrouping grouping, List<string> keys, CancellationToken cancellationToken)
    {
        var ids = keys.Select(k => Guid.TryParse(k, out var id) ? id : Guid.Empty).Where(id => id != Guid.Empty).ToList();
        if (grouping == SpendGrouping.Job)
        {
            return (await db.Jobs.AsNoTracking().Where(j => ids.Contains(j.Id)).Select(j => new { j.Id, j.Name }).ToListAsync(cancellationToken))
                .ToDictionary(j => j.Id.ToString(), j => j.Name ?? "", StringComparer.Ordinal);
        }

        if (grouping == SpendGrouping.Shot)
        {
            return (await (
                    from shot in db.Shots
                    join job in db.Jobs on shot.JobId equals job.Id
                    where ids.Contains(shot.Id)
                    select new { shot.Id, JobName = job.Name, shot.Name })
                .AsNoTracking().ToListAsync(cancellationToken))
                .ToDictionary(s => s.Id.ToString(), s => $"{s.JobName ?? ""} / {s.Name}", StringComparer.Ordinal);
        }

        return [];
    }

    private sealed class Row
    {
        public required string Key { get; init; }

        public long Attempts { get; init; }

        public double DeviceSeconds { get; init; }

        public long CostMicros { get; init; }

        public double EnergyJoules { get; init; }

        public double Co2eGrams { get; init; }
    }
}
