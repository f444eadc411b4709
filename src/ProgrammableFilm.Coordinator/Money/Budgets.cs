using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Money;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Coordinator.Money;

/// <summary>
/// A crossing of a budget threshold, as recorded in <c>budget_alerts</c>: the project's own budget, or with
/// <see cref="JobId"/> that job's (of <see cref="Project"/>). <see cref="Level"/> is <c>soft</c> or <c>hard</c>.
/// <see cref="Id"/> is unique and increasing: the idempotency key for whoever reacts.
/// </summary>
public sealed record BudgetAlert(long Id, string Project, Guid? JobId, string Level, DateTime CrossedAt, decimal SpentUsd, decimal LimitUsd);

/// <summary>
/// A project against its budget. Without a budget <see cref="LimitUsd"/> and <see cref="SoftFraction"/> are null and
/// the state is <c>ok</c>. <see cref="State"/>: <c>ok</c>, <c>soft</c> (past the soft threshold) or <c>hard</c> (the
/// limit is reached: nothing new of the project is dispatched).
/// </summary>
public sealed record BudgetStatus(
    string Project,
    decimal? LimitUsd,
    double? SoftFraction,
    decimal? SoftLimitUsd,
    decimal SpentUsd,
    string State,
    int Attempts,
    double EnergyKwh,
    double Co2eGrams,
    DateTime? UpdatedAt,
    IReadOnlyList<BudgetAlert> Alerts);

/// <summary>
/// A job's own budget against its spend, like <see cref="BudgetStatus"/>: without a budget the limit is null and the
/// state <c>ok</c>; <c>hard</c> means nothing new of the job is dispatched. The project's budget applies as well.
/// <see cref="Alerts"/> are the latest crossings of the job's own thresholds.
/// </summary>
public sealed record JobBudgetStatus(
    Guid JobId,
    string Project,
    decimal? LimitUsd,
    double? SoftFraction,
    decimal? SoftLimitUsd,
    decimal SpentUsd,
    string State,
    DateTime? UpdatedAt,
    IReadOnlyList<BudgetAlert> Alerts);

/// <summary>
/// Project budgets, and jobs' own. Spend is the trigger-kept <c>project_spend</c> (or <c>job_spend</c>) row (one read,
/// never a sum of the ledger); a crossing by billing is recorded by the same trigger, a crossing by lowering the budget
/// here, so each crossing is one <c>budget_alerts</c> row either way.
/// </summary>
public sealed class Budgets(IDbContextFactory<FarmDbContext> contextFactory, DispatchSignal dispatchSignal, TimeProvider time)
{
    /// <summary>How many of a project's latest alerts its status lists.</summary>
    public const int AlertsShown = 20;

    /// <summary>The most crossings one list of a project's alerts may hold.</summary>
    public const int MaxAlertsListed = 200;

    private const double JoulesPerKilowattHour = 3.6e6;

    public async Task<BudgetStatus> GetAsync(string project, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await StatusAsync(db, project, cancellationToken);
    }

    /// <summary>
    /// Sets the project's budget (the limit in dollars, at most six decimals; the soft threshold as a fraction of it).
    /// Lowering it below what was spent records the crossings; raising it above lets the dispatcher resume the
    /// project's jobs at once. The errors name the request's fields; nothing is written when there are any.
    /// </summary>
    public async Task<(BudgetStatus? Status, IReadOnlyList<FieldError> Errors)> SetAsync(string project, decimal limitUsd, double? softFraction, CancellationToken cancellationToken)
    {
        var (fraction, errors) = BudgetPolicy.CheckLimit(limitUsd, softFraction);
        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var now = time.GetUtcNow().UtcDateTime;
        var limit = MoneyMath.ToMicros(limitUsd);
        var soft = BudgetPolicy.SoftMicros(limit, fraction);
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);

        // The spend row is what billing locks: holding it, no bill lands between reading the spend and the new budget,
        // so a crossing is recorded either here or by the trigger, never both or neither.
        await db.Database.ExecuteSqlAsync(
            $"INSERT INTO project_spend (project, attempts, cost_micros, device_seconds, energy_joules, co2e_grams) VALUES ({project}, 0, 0, 0, 0, 0) ON CONFLICT (project) DO NOTHING",
            cancellationToken);
        var spent = db.Database.IsNpgsql()
            ? await db.Database.SqlQuery<long>($"SELECT cost_micros AS \"Value\" FROM project_spend WHERE project = {project} FOR UPDATE").SingleAsync(cancellationToken)
            : await db.ProjectSpend.Where(s => s.Project == project).Select(s => s.CostMicros).SingleAsync(cancellationToken);
        var old = await db.ProjectBudgets.SingleOrDefaultAsync(b => b.Project == project, cancellationToken);
        var before = old is null ? BudgetState.Ok : BudgetPolicy.State(spent, old.LimitMicros, old.SoftMicros);
        if (old is null)
        {
            db.ProjectBudgets.Add(new ProjectBudget { Project = project, LimitMicros = limit, SoftFraction = fraction, SoftMicros = soft, UpdatedAt = now });
        }
        else
        {
            old.LimitMicros = limit;
            old.SoftFraction = fraction;
            old.SoftMicros = soft;
            old.UpdatedAt = now;
        }

        foreach (var level in BudgetPolicy.Crossed(before, BudgetPolicy.State(spent, limit, soft)))
        {
            db.BudgetAlerts.Add(new BudgetAlertRow { Project = project, Level = Level(level), CrossedAt = now, SpentMicros = spent, LimitMicros = limit });
        }

        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);

        // Raised above the spend: the project's Ready tasks are dispatchable again on the next pass, not the next poll.
        dispatchSignal.Wake();
        return (await StatusAsync(db, project, cancellationToken), []);
    }

    /// <summary>Whose hard limit stops the job: <c>project</c>, <c>job</c> (its own), or null.</summary>
    public static Task<string?> StoppedByAsync(FarmDbContext db, Guid jobId, CancellationToken cancellationToken) =>
        StopsInPrecedence(db).Where(s => s.JobId == jobId).Select(s => s.Budget).FirstOrDefaultAsync(cancellationToken);

    /// <summary>
    /// The one rule of whose limit a stopped job reports: the project's wins over the job's own when both are reached,
    /// since raising the job's alone would not resume it. Composable inside another query (the claim reads it per attempt).
    /// </summary>
    public static IQueryable<BudgetStop> StopsInPrecedence(FarmDbContext db) => db.BudgetStops.OrderByDescending(s => s.Budget == "project");

    /// <summary>The same rule over a job's stops already read: the one it reports, or null.</summary>
    public static string? InPrecedence(IReadOnlyCollection<string> stops) => stops.Contains("project") ? "project" : stops.FirstOrDefault();

    /// <summary>
    /// Every crossing of the project's budget and of its jobs' own, newest first, at most <paramref name="limit"/>: a
    /// backward walk of the index on (project, id).
    /// </summary>
    public async Task<IReadOnlyList<BudgetAlert>> AlertsAsync(string project, int limit, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var rows = await db.BudgetAlerts.AsNoTracking().Where(a => a.Project == project).OrderByDescending(a => a.Id).Take(limit).ToListAsync(cancellationToken);
        return [.. rows.Select(ToAlert)];
    }

    public async Task<JobBudgetStatus?> GetJobAsync(Guid jobId, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        return await JobStatusAsync(db, jobId, cancellationToken);
    }

    /// <summary>
    /// Sets a job's own budget, checked like a project's; null status and no errors when there is no such job. At the
    /// limit nothing new of the job is dispatched; raising it lets the dispatcher resume the job at once. Its crossings
    /// are alerts like its project's, naming the job: lowering it below what was spent records them here.
    /// </summary>
    public async Task<(JobBudgetStatus? Status, IReadOnlyList<FieldError> Errors)> SetJobAsync(Guid jobId, decimal limitUsd, double? softFraction, CancellationToken cancellationToken)
    {
        var (fraction, errors) = BudgetPolicy.CheckLimit(limitUsd, softFraction);
        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var limit = MoneyMath.ToMicros(limitUsd);
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var project = await db.Jobs.Where(j => j.Id == jobId).Select(j => j.Project).SingleOrDefaultAsync(cancellationToken);
        if (project is null)
        {
            return (null, []);
        }

        var soft = BudgetPolicy.SoftMicros(limit, fraction);
        var now = time.GetUtcNow().UtcDateTime;
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);

        // As for a project: holding the spend row that billing locks, a crossing is recorded either here or by the
        // trigger, never both or neither. Two first settings at once queue on it and both succeed, the later winning.
        await db.Database.ExecuteSqlAsync($"INSERT INTO job_spend (job_id, cost_micros) VALUES ({jobId}, 0) ON CONFLICT (job_id) DO NOTHING", cancellationToken);
        var spent = db.Database.IsNpgsql()
            ? await db.Database.SqlQuery<long>($"SELECT cost_micros AS \"Value\" FROM job_spend WHERE job_id = {jobId} FOR UPDATE").SingleAsync(cancellationToken)
            : await db.JobSpend.Where(s => s.JobId == jobId).Select(s => s.CostMicros).SingleAsync(cancellationToken);
        var old = await db.JobBudgets.AsNoTracking().SingleOrDefaultAsync(b => b.JobId == jobId, cancellationToken);
        var before = old is null ? BudgetState.Ok : BudgetPolicy.State(spent, old.LimitMicros, old.SoftMicros);
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO job_budgets (job_id, limit_micros, soft_fraction, soft_micros, updated_at)
            VALUES ({jobId}, {limit}, {fraction}, {soft}, {now})
            ON CONFLICT (job_id) DO UPDATE
            SET limit_micros = excluded.limit_micros, soft_fraction = excluded.soft_fraction, soft_micros = excluded.soft_micros, updated_at = excluded.updated_at
            """, cancellationToken);
        foreach (var level in BudgetPolicy.Crossed(before, BudgetPolicy.State(spent, limit, soft)))
        {
            db.BudgetAlerts.Add(new BudgetAlertRow { Project = project, JobId = jobId, Level = Level(level), CrossedAt = now, SpentMicros = spent, LimitMicros = limit });
        }

        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);

        // Raised above the spend: the job's Ready tasks are dispatchable again on the next pass, not the next poll.
        dispatchSignal.Wake();
        return (await JobStatusAsync(db, jobId, cancellationToken), []);
    }

    /// <summary>The row of a budget given in a job's spec (<c>budget:</c>), already checked by the spec reader.</summary>
    public static JobBudget JobBudgetRow(Guid jobId, JobBudgetSpec budget, DateTime now)
    {
        var limit = MoneyMath.ToMicros(budget.LimitUsd);
        return new JobBudget { JobId = jobId, LimitMicros = limit, SoftFraction = budget.SoftFraction, SoftMicros = BudgetPolicy.SoftMicros(limit, budget.SoftFraction), UpdatedAt = now };
    }

    public static string Level(BudgetState state) => state.ToString().ToLowerInvariant();

    private static async Task<JobBudgetStatus?> JobStatusAsync(FarmDbContext db, Guid jobId, CancellationToken cancellationToken)
    {
        var job = await db.Jobs.AsNoTracking().Where(j => j.Id == jobId).Select(j => new { j.Id, j.Project }).SingleOrDefaultAsync(cancellationToken);
        if (job is null)
        {
            return null;
        }

        var budget = await db.JobBudgets.AsNoTracking().SingleOrDefaultAsync(b => b.JobId == jobId, cancellationToken);
        var spent = await db.JobSpend.AsNoTracking().Where(s => s.JobId == jobId).Select(s => (long?)s.CostMicros).SingleOrDefaultAsync(cancellationToken) ?? 0;
        var alerts = await db.BudgetAlerts.AsNoTracking().Where(a => a.JobId == jobId).OrderByDescending(a => a.Id).Take(AlertsShown).ToListAsync(cancellationToken);
        return new JobBudgetStatus(
            jobId,
            job.Project,
            budget is null ? null : MoneyMath.FromMicros(budget.LimitMicros),
            budget?.SoftFraction,
            budget is null ? null : MoneyMath.FromMicros(budget.SoftMicros),
            MoneyMath.FromMicros(spent),
            Level(budget is null ? BudgetState.Ok : BudgetPolicy.State(spent, budget.LimitMicros, budget.SoftMicros)),
            budget is null ? null : PriceBookCache.Utc(budget.UpdatedAt),
            [.. alerts.Select(ToAlert)]);
    }

    private static async Task<BudgetStatus> StatusAsync(FarmDbContext db, string project, CancellationToken cancellationToken)
    {
        var budget = await db.ProjectBudgets.AsNoTracking().SingleOrDefaultAsync(b => b.Project == project, cancellationToken);
        var spend = await db.ProjectSpend.AsNoTracking().SingleOrDefaultAsync(s => s.Project == project, cancellationToken);
        var spent = spend?.CostMicros ?? 0;
        // The project's own crossings: its jobs' crossings of their own budgets are on the jobs' statuses.
        var alerts = await db.BudgetAlerts.AsNoTracking().Where(a => a.Project == project && a.JobId == null).OrderByDescending(a => a.Id).Take(AlertsShown)
            .ToListAsync(cancellationToken);
        return new BudgetStatus(
            project,
            budget is null ? null : MoneyMath.FromMicros(budget.LimitMicros),
            budget?.SoftFraction,
            budget is null ? null : MoneyMath.FromMicros(budget.SoftMicros),
            MoneyMath.FromMicros(spent),
            Level(budget is null ? BudgetState.Ok : BudgetPolicy.State(spent, budget.LimitMicros, budget.SoftMicros)),
            (int)(spend?.Attempts ?? 0),
            (spend?.EnergyJoules ?? 0) / JoulesPerKilowattHour,
            spend?.Co2eGrams ?? 0,
            budget is null ? null : PriceBookCache.Utc(budget.UpdatedAt),
            [.. alerts.Select(ToAlert)]);
    }

    internal static BudgetAlert ToAlert(BudgetAlertRow row) =>
        new(row.Id, row.Project, row.JobId, row.Level, PriceBookCache.Utc(row.CrossedAt), MoneyMath.FromMicros(row.SpentMicros), MoneyMath.FromMicros(row.LimitMicros));
}
