using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Coordinator.Money;
using ProgrammableFilm.Domain.Costs;
using Entities = ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Coordinator;

/// <summary>One attempt to bill: what it used and where it belongs.</summary>
public sealed record Bill(Attempt Attempt, Entities.RenderTask Task, string Project, string WorkerId, DeviceUsage Usage, string Outcome);

/// <summary>
/// Appends one row per attempt to the usage ledger, whatever the attempt's outcome (failed, lost and cancelled
/// attempts spent device time too). Idempotency key: the attempt id (unique in the table). Each row keeps the rates it
/// was billed at (price per device-hour, carbon intensity), taken from the price book in memory: no query per row.
/// The row's cost is rounded here, once (see <see cref="Domain.Money.MoneyMath"/>).
/// </summary>
public sealed class UsageLedger(PriceBookCache prices, FarmMetrics metrics)
{
    /// <summary>
    /// Bills the attempt unless it already is. A concurrent duplicate inserting the same attempt id violates the
    /// unique index and its transaction rolls back; the consumer's retry then finds the row and skips.
    /// </summary>
    public async Task RecordAsync(FarmDbContext db, Attempt attempt, Entities.RenderTask task, string workerId, DeviceUsage usage, string outcome, DateTime now, CancellationToken cancellationToken)
    {
        if (await db.Usage.AnyAsync(u => u.AttemptId == attempt.Id, cancellationToken))
        {
            return;
        }

        var project = await db.Jobs.Where(j => j.Id == task.JobId).Select(j => j.Project).SingleAsync(cancellationToken);
        await AppendAsync(db, [new Bill(attempt, task, project, workerId, usage, outcome)], now, cancellationToken);
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>
    /// Bills the attempts in the caller's transaction; the caller has checked, in that transaction, that none is billed
    /// yet. On PostgreSQL the rows go in one statement, so the ledger's statement triggers (roll-ups, project spend,
    /// budget crossings) add a whole batch once; on SQLite they are added to the context for the caller's
    /// <c>SaveChanges</c>.
    /// </summary>
    public async Task AppendAsync(FarmDbContext db, IReadOnlyList<Bill> bills, DateTime now, CancellationToken cancellationToken)
    {
        if (bills.Count == 0)
        {
            return;
        }

        var book = await prices.CurrentAsync(cancellationToken);
        var rows = bills.Select(bill =>
        {
            var rates = book.RatesFor(bill.Usage.DeviceSku, bill.Attempt.Pool, bill.Project, now);
            var deviceSeconds = Math.Max(0, bill.Usage.DeviceSeconds);
            var joules = bill.Usage.EnergyEstimated ? CostCalculator.EstimatedJoules(deviceSeconds, rates.RatedWatts) : Math.Max(0, bill.Usage.EnergyJoules);
            return new UsageRecord
            {
                AttemptId = bill.Attempt.Id,
                TaskId = bill.Task.Id,
                ShotId = bill.Task.ShotId,
                JobId = bill.Task.JobId,
                Project = bill.Project,
                WorkerId = bill.WorkerId,
                DeviceSku = bill.Usage.DeviceSku,
                DeviceCount = bill.Usage.DeviceCount,
                DeviceSeconds = deviceSeconds,
                EnergyJoules = joules,
                EnergyEstimated = bill.Usage.EnergyEstimated,
                DollarsPerHour = rates.DollarsPerHour,
                Cost = CostCalculator.Cost(deviceSeconds, rates.DollarsPerHour),
                Pool = bill.Attempt.Pool,
                GramsCo2ePerKwh = rates.GramsCo2ePerKwh,
                Co2eGrams = CostCalculator.Co2eGrams(joules, rates.GramsCo2ePerKwh),
                Outcome = bill.Outcome,
                RecordedAt = now,
            };
        }).ToList();

        if (db.Database.IsNpgsql())
        {
            await InsertAsync(db, rows, cancellationToken);
        }
        else
        {
            db.Usage.AddRange(rows);
        }

        foreach (var row in rows)
        {
            metrics.Billed(db, row, row.Pool!);
        }
    }

    private static Task InsertAsync(FarmDbContext db, List<UsageRecord> rows, CancellationToken cancellationToken)
    {
        Guid[] attempts = [.. rows.Select(r => r.AttemptId)], tasks = [.. rows.Select(r => r.TaskId)], shots = [.. rows.Select(r => r.ShotId)], jobs = [.. rows.Select(r => r.JobId)];
        string[] projects = [.. rows.Select(r => r.Project)], workers = [.. rows.Select(r => r.WorkerId)], skus = [.. rows.Select(r => r.DeviceSku)], outcomes = [.. rows.Select(r => r.Outcome)], pools = [.. rows.Select(r => r.Pool!)];
        int[] deviceCounts = [.. rows.Select(r => r.DeviceCount)];
        double[] deviceSeconds = [.. rows.Select(r => r.DeviceSeconds)], joules = [.. rows.Select(r => r.EnergyJoules)];
        double?[] intensities = [.. rows.Select(r => r.GramsCo2ePerKwh)], co2e = [.. rows.Select(r => r.Co2eGrams)];
        bool[] estimated = [.. rows.Select(r => r.EnergyEstimated)];
        decimal[] dollarsPerHour = [.. rows.Select(r => r.DollarsPerHour)], costs = [.. rows.Select(r => r.Cost)];
        var recordedAt = rows[0].RecordedAt;
        return db.Database.ExecuteSqlAsync($"""
            INSERT INTO usage_ledger (attempt_id, task_id, shot_id, job_id, project, worker_id, device_sku, device_count, device_seconds,
                                      energy_joules, energy_estimated, dollars_per_hour, cost, outcome, recorded_at, pool, grams_co2e_per_kwh, co2e_grams)
            SELECT b.attempt_id, b.task_id, b.shot_id, b.job_id, b.project, b.worker_id, b.device_sku, b.device_count, b.device_seconds,
                   b.energy_joules, b.energy_estimated, b.dollars_per_hour, b.cost, b.outcome, {recordedAt}, b.pool, b.grams_co2e_per_kwh, b.co2e_grams
            FROM unnest({attempts}, {tasks}, {shots}, {jobs}, {projects}, {workers}, {skus}, {deviceCounts}, {deviceSeconds},
                        {joules}, {estimated}, {dollarsPerHour}, {costs}, {outcomes}, {pools}, {intensities}, {co2e})
                AS b(attempt_id, task_id, shot_id, job_id, project, worker_id, device_sku, device_count, device_seconds,
                     energy_joules, energy_estimated, dollars_per_hour, cost, outcome, pool, grams_co2e_per_kwh, co2e_grams)
            """, cancellationToken);
    }
}
