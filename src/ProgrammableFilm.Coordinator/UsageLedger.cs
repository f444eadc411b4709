using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Coordinator.Money;
using ProgrammableFilm.Domain.Costs;
using Entities = ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Coordinator;

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
        await AppendAsync(db, attempt, task, project, workerId, usage, outcome, now, cancellationToken);
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>
    /// Adds the row to the context for the caller's next <c>SaveChanges</c> (one round trip with its other writes); the
    /// caller has checked, in the same transaction, that the attempt is not billed yet.
    /// </summary>
    public async Task AppendAsync(FarmDbContext db, Attempt attempt, Entities.RenderTask task, string project, string workerId, DeviceUsage usage, string outcome, DateTime now, CancellationToken cancellationToken)
    {
        var rates = (await prices.CurrentAsync(cancellationToken)).RatesFor(usage.DeviceSku, attempt.Pool, project, now);
        var deviceSeconds = Math.Max(0, usage.DeviceSeconds);
        var joules = usage.EnergyEstimated ? CostCalculator.EstimatedJoules(deviceSeconds, rates.RatedWatts) : Math.Max(0, usage.EnergyJoules);
        var billed = db.Usage.Add(new UsageRecord
        {
            AttemptId = attempt.Id,
            TaskId = task.Id,
            ShotId = task.ShotId,
            JobId = task.JobId,
            Project = project,
            WorkerId = workerId,
            DeviceSku = usage.DeviceSku,
            DeviceCount = usage.DeviceCount,
            DeviceSeconds = deviceSeconds,
            EnergyJoules = joules,
            EnergyEstimated = usage.EnergyEstimated,
            DollarsPerHour = rates.DollarsPerHour,
            Cost = CostCalculator.Cost(deviceSeconds, rates.DollarsPerHour),
            Pool = attempt.Pool,
            GramsCo2ePerKwh = rates.GramsCo2ePerKwh,
            Co2eGrams = CostCalculator.Co2eGrams(joules, rates.GramsCo2ePerKwh),
            Outcome = outcome,
            RecordedAt = now,
        });
        metrics.Billed(db, billed.Entity, attempt.Pool);
    }
}
