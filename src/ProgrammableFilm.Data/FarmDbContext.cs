using System.Text;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Data;

/// <summary>
/// The coordinator's database: PostgreSQL in farm mode, SQLite in embedded mode. The schema is created by the SQL
/// migrations in <c>Migrations/</c>, applied by <see cref="DatabaseMigrator"/>, never by EF at start-up.
/// </summary>
public sealed class FarmDbContext(DbContextOptions<FarmDbContext> options) : DbContext(options)
{
    public DbSet<Job> Jobs => Set<Job>();

    public DbSet<Shot> Shots => Set<Shot>();

    public DbSet<Plate> Plates => Set<Plate>();

    public DbSet<RenderTask> Tasks => Set<RenderTask>();

    public DbSet<TaskDependency> TaskDependencies => Set<TaskDependency>();

    public DbSet<Attempt> Attempts => Set<Attempt>();

    public DbSet<Worker> Workers => Set<Worker>();

    public DbSet<UsageRecord> Usage => Set<UsageRecord>();

    public DbSet<JobDependency> JobDependencies => Set<JobDependency>();

    public DbSet<JobWorkerFailures> JobWorkerFailures => Set<JobWorkerFailures>();

    public DbSet<AttemptLogLine> AttemptLogLines => Set<AttemptLogLine>();

    public DbSet<MaintenanceRun> MaintenanceRuns => Set<MaintenanceRun>();

    public DbSet<ProjectShare> ProjectShares => Set<ProjectShare>();

    public DbSet<UsageRollup> UsageRollups => Set<UsageRollup>();

    public DbSet<ShotTaskCount> ShotTaskCounts => Set<ShotTaskCount>();

    public DbSet<TaskCountRollup> TaskCountRollups => Set<TaskCountRollup>();

    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();

    public DbSet<AuditEntry> AuditLog => Set<AuditEntry>();

    public DbSet<ShotVersion> ShotVersions => Set<ShotVersion>();

    public DbSet<TaskReuse> TaskReuses => Set<TaskReuse>();

    public DbSet<DevicePriceRow> DevicePrices => Set<DevicePriceRow>();

    public DbSet<CarbonIntensityRow> CarbonIntensities => Set<CarbonIntensityRow>();

    public DbSet<ProjectSpend> ProjectSpend => Set<ProjectSpend>();

    public DbSet<ProjectBudget> ProjectBudgets => Set<ProjectBudget>();

    public DbSet<JobSpend> JobSpend => Set<JobSpend>();

    public DbSet<JobBudget> JobBudgets => Set<JobBudget>();

    /// <summary>The jobs a reached hard limit stops: the one budget predicate of the dispatcher, the claims and the job status.</summary>
    public IQueryable<BudgetStop> BudgetStops => Set<BudgetStop>();

    public DbSet<BudgetAlertRow> BudgetAlerts => Set<BudgetAlertRow>();

    public DbSet<JobQuote> JobQuotes => Set<JobQuote>();

    public DbSet<ShotQuote> ShotQuotes => Set<ShotQuote>();

    public DbSet<WebhookSubscription> WebhookSubscriptions => Set<WebhookSubscription>();

    public DbSet<WebhookDelivery> WebhookDeliveries => Set<WebhookDelivery>();

    public DbSet<WebhookAttempt> WebhookAttempts => Set<WebhookAttempt>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Job>(job =>
        {
            job.ToTable("jobs");
            job.Property(j => j.State).HasConversion<string>();
            job.HasMany(j => j.Shots).WithOne().HasForeignKey(s => s.JobId);
        });
        modelBuilder.Entity<Shot>(shot =>
        {
            shot.ToTable("shots");
            shot.Property(s => s.State).HasConversion<string>();
            shot.Property(s => s.Review).HasConversion<string>();
        });
        modelBuilder.Entity<Plate>(plate => plate.ToTable("plates"));
        modelBuilder.Entity<ShotVersion>(version =>
        {
            version.ToTable("shot_versions");
            version.HasKey(v => new { v.LineageId, v.Version });
        });
        modelBuilder.Entity<TaskReuse>(reuse =>
        {
            reuse.ToTable("task_reuses");
            reuse.HasKey(r => new { r.ShotId, r.TaskId });
        });
        modelBuilder.Entity<RenderTask>(task =>
        {
            task.ToTable("tasks");
            task.Property(t => t.State).HasConversion<string>();
            task.HasOne<Shot>().WithMany().HasForeignKey(t => t.ShotId);
            task.HasOne<Job>().WithMany().HasForeignKey(t => t.JobId);
        });
        modelBuilder.Entity<TaskDependency>(dependency =>
        {
            dependency.ToTable("task_dependencies");
            dependency.HasKey(d => new { d.TaskId, d.DependsOnTaskId });
            dependency.HasOne<RenderTask>().WithMany().HasForeignKey(d => d.TaskId);
            dependency.HasOne<RenderTask>().WithMany().HasForeignKey(d => d.DependsOnTaskId);
        });
        modelBuilder.Entity<Attempt>(attempt =>
        {
            attempt.ToTable("attempts");
            attempt.Property(a => a.State).HasConversion<string>();
            attempt.HasOne<RenderTask>().WithMany().HasForeignKey(a => a.TaskId);
        });
        modelBuilder.Entity<Worker>(worker => worker.ToTable("workers"));
        modelBuilder.Entity<UsageRecord>(usage =>
        {
            usage.ToTable("usage_ledger");
            usage.HasIndex(u => u.AttemptId).IsUnique();
            usage.HasOne<Attempt>().WithMany().HasForeignKey(u => u.AttemptId);
        });

        modelBuilder.Entity<JobDependency>(dependency =>
        {
            dependency.ToTable("job_dependencies");
            dependency.HasKey(d => new { d.JobId, d.DependsOnJobId });
            dependency.HasOne<Job>().WithMany().HasForeignKey(d => d.JobId);
            dependency.HasOne<Job>().WithMany().HasForeignKey(d => d.DependsOnJobId);
        });
        modelBuilder.Entity<JobWorkerFailures>(failures =>
        {
            failures.ToTable("job_worker_failures");
            failures.HasKey(f => new { f.JobId, f.WorkerId });
            failures.HasOne<Job>().WithMany().HasForeignKey(f => f.JobId);
        });
        modelBuilder.Entity<AttemptLogLine>(line =>
        {
            line.ToTable("attempt_log_lines");
            line.HasKey(l => new { l.AttemptId, l.Seq });
            line.HasOne<Attempt>().WithMany().HasForeignKey(l => l.AttemptId);
        });
        modelBuilder.Entity<MaintenanceRun>(run =>
        {
            run.ToTable("maintenance_runs");
            run.HasKey(r => r.Name);
        });
        modelBuilder.Entity<UsageRollup>(rollup =>
        {
            rollup.ToTable("usage_rollups");
            rollup.HasKey(r => new { r.JobId, r.ShotId, r.DeviceSku, r.DollarsPerHour, r.EnergyEstimated });
        });
        modelBuilder.Entity<ShotTaskCount>(count =>
        {
            count.ToTable("shot_task_counts");
            count.HasKey(c => new { c.JobId, c.ShotId, c.State });
            count.Property(c => c.State).HasConversion<string>();
        });
        modelBuilder.Entity<TaskCountRollup>(rollup =>
        {
            rollup.ToTable("task_count_rollups");
            rollup.HasKey(r => r.JobId);
        });

        modelBuilder.Entity<ProjectShare>(share =>
        {
            share.ToTable("project_shares");
            share.HasKey(s => s.Project);
        });
        modelBuilder.Entity<DevicePriceRow>(entry =>
        {
            entry.ToTable("device_prices");
            entry.Property(e => e.Id).ValueGeneratedOnAdd();
        });
        modelBuilder.Entity<CarbonIntensityRow>(entry =>
        {
            entry.ToTable("carbon_intensities");
            entry.Property(e => e.Id).ValueGeneratedOnAdd();
        });
        modelBuilder.Entity<ProjectSpend>(spend =>
        {
            spend.ToTable("project_spend");
            spend.HasKey(s => s.Project);
        });
        modelBuilder.Entity<ProjectBudget>(budget =>
        {
            budget.ToTable("project_budgets");
            budget.HasKey(b => b.Project);
        });
        modelBuilder.Entity<JobSpend>(spend =>
        {
            spend.ToTable("job_spend");
            spend.HasKey(s => s.JobId);
        });
        modelBuilder.Entity<JobBudget>(budget =>
        {
            budget.ToTable("job_budgets");
            budget.HasKey(b => b.JobId);
        });
        modelBuilder.Entity<BudgetStop>(stop =>
        {
            stop.ToView("budget_stops");
            stop.HasNoKey();
        });
        modelBuilder.Entity<BudgetAlertRow>(alert =>
        {
            alert.ToTable("budget_alerts");
            alert.Property(a => a.Id).ValueGeneratedOnAdd();
        });
        modelBuilder.Entity<ApiKey>(key =>
        {
            key.ToTable("api_keys");
            key.Property(k => k.Role).HasConversion<string>();
            key.HasIndex(k => k.Hash).IsUnique();
        });
        modelBuilder.Entity<AuditEntry>(entry =>
        {
            entry.ToTable("audit_log");
            entry.Property(e => e.Id).ValueGeneratedOnAdd();
        });

        modelBuilder.Entity<JobQuote>(quote =>
        {
            quote.ToTable("job_quotes");
            quote.HasKey(q => q.JobId);
        });
        modelBuilder.Entity<ShotQuote>(quote =>
        {
            quote.ToTable("shot_quotes");
            quote.HasKey(q => q.ShotId);
        });
        modelBuilder.Entity<WebhookSubscription>(subscription => subscription.ToTable("webhook_subscriptions"));
        modelBuilder.Entity<WebhookDelivery>(delivery =>
        {
            delivery.ToTable("webhook_deliveries");
            delivery.Property(d => d.State).HasConversion<string>();
        });
        modelBuilder.Entity<WebhookAttempt>(attempt =>
        {
            attempt.ToTable("webhook_attempts");
            attempt.HasKey(a => new { a.DeliveryId, a.Number });
        });

        foreach (var entity in modelBuilder.Model.GetEntityTypes())
        {
            foreach (var property in entity.GetProperties())
            {
                property.SetColumnName(SnakeCase(property.Name));
            }
        }
    }

    private static string SnakeCase(string name)
    {
        var builder = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                builder.Append('_');
            }

            builder.Append(char.ToLowerInvariant(name[i]));
        }

        return builder.ToString();
    }
}
