using Hangfire;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// The farm's recurring maintenance, run by Hangfire so that with several coordinator processes each occurrence
/// runs once. Every job is safe to run twice or concurrently (all changes are conditional), and a failed run is not
/// retried: the next occurrence comes within seconds.
/// </summary>
[AutomaticRetry(Attempts = 0, OnAttemptsExceeded = AttemptsExceededAction.Delete)]
public sealed class FarmMaintenance(
    LeaseSweeper leases,
    Dispatcher dispatcher,
    ErrorQueues errorQueues,
    Money.BudgetAlertRelay budgetAlerts,
    IDbContextFactory<FarmDbContext> contextFactory,
    ShotStorage storage,
    CoordinatorOptions options,
    TimeProvider time,
    ILogger<FarmMaintenance> logger)
{
    public Task SweepLeasesAsync(CancellationToken cancellationToken) => leases.SweepAsync(cancellationToken);

    public Task RepublishUnclaimedAsync(CancellationToken cancellationToken) => dispatcher.RepublishUnclaimedAsync(cancellationToken);

    public Task WatchErrorQueuesAsync(CancellationToken cancellationToken) => errorQueues.WatchAsync(cancellationToken);

    public Task RelayBudgetAlertsAsync(CancellationToken cancellationToken) => budgetAlerts.RelayAsync(cancellationToken);

    /// <summary>Deletes the intermediate frames of shots that succeeded longer ago than the retention; the MP4 and manifest stay.</summary>
    public async Task<int> ApplyRetentionAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var finishedBefore = now - options.FrameRetention;
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var shots = await db.Shots.Where(s => s.State == ShotState.Succeeded && s.FinishedAt <= finishedBefore && s.FramesDeletedAt == null)
            .Select(s => new { s.Id, s.Folder })
            .Take(500)
            .ToListAsync(cancellationToken);
        foreach (var shot in shots)
        {
            // Frames first, then the mark: a crash in between deletes nothing twice and leaves nothing behind.
            var frames = storage.FullPath($"{shot.Folder}/frames");
            if (Directory.Exists(frames))
            {
                Directory.Delete(frames, recursive: true);
            }

            await db.Shots.Where(s => s.Id == shot.Id).ExecuteUpdateAsync(set => set.SetProperty(s => s.FramesDeletedAt, now), cancellationToken);
        }

        if (shots.Count > 0)
        {
            logger.LogInformation("Retention: deleted the frames of {Count} shot(s) finished before {Before:O}", shots.Count, finishedBefore);
        }

        return shots.Count;
    }
}

/// <summary>
/// Registers the recurring jobs when the host starts (idempotent: every coordinator does it), in the background and
/// until it succeeds. Hangfire takes a lock per recurring job to change it, and a coordinator killed while its
/// scheduler held one leaves the lock behind until it expires: registering in the host's start then waited 15 s and
/// threw, and the restarted coordinator died (bench/faults.sh, kill-api). The jobs registered before go on meanwhile.
/// </summary>
public sealed class MaintenanceSchedule(IRecurringJobManager recurringJobs, CoordinatorOptions options, ILogger<MaintenanceSchedule> logger) : BackgroundService
{
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Off the host's start: AddOrUpdate blocks while it waits for a lock.
        await Task.Yield();
        while (true)
        {
            try
            {
                Register();
                return;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("Recurring jobs not registered yet ({Reason}); trying again in {RetryAfter}", e.Message, RetryAfter);
            }

            await Task.Delay(RetryAfter, stoppingToken);
        }
    }

    private void Register()
    {
        var sweepSeconds = Math.Clamp((int)options.SweepInterval.TotalSeconds, 1, 59);
        recurringJobs.AddOrUpdate<FarmMaintenance>("lease-sweep", m => m.SweepLeasesAsync(CancellationToken.None), $"*/{sweepSeconds} * * * * *");
        recurringJobs.AddOrUpdate<FarmMaintenance>("republish-unclaimed", m => m.RepublishUnclaimedAsync(CancellationToken.None), "*/5 * * * * *");
        recurringJobs.AddOrUpdate<FarmMaintenance>("budget-alerts", m => m.RelayBudgetAlertsAsync(CancellationToken.None), $"*/{sweepSeconds} * * * * *");
        recurringJobs.AddOrUpdate<FarmMaintenance>("error-queue-watch", m => m.WatchErrorQueuesAsync(CancellationToken.None), "*/30 * * * * *");
        recurringJobs.AddOrUpdate<FarmMaintenance>("frame-retention", m => m.ApplyRetentionAsync(CancellationToken.None), Cron.Hourly());
        recurringJobs.AddOrUpdate<Webhooks.WebhookSender>("webhook-sweep", s => s.SweepAsync(CancellationToken.None), "*/15 * * * * *");
    }
}

public static class FarmMaintenanceExtensions
{
    /// <summary>Hangfire with the given storage (PostgreSQL in a farm, in-memory embedded) running the farm's sweeps.</summary>
    public static IServiceCollection AddFarmMaintenance(this IServiceCollection services, Action<IGlobalConfiguration> useStorage)
    {
        services.AddHangfire(configuration =>
        {
            configuration.SetDataCompatibilityLevel(CompatibilityLevel.Version_180).UseSimpleAssemblyNameTypeSerializer().UseRecommendedSerializerSettings();
            useStorage(configuration);
        });
        services.AddHangfireServer(server =>
        {
            // Sub-minute schedules need the scheduler to look every second (its default is 15 s).
            server.SchedulePollingInterval = TimeSpan.FromSeconds(1);
            server.WorkerCount = 2;
        });

        // Webhook deliveries wait on other people's servers: their own queue and workers, so that a slow receiver
        // never holds a worker the lease sweep needs.
        services.AddHangfireServer((provider, server) =>
        {
            server.ServerName = $"{Environment.MachineName}:{Environment.ProcessId}:webhooks";
            server.Queues = [Webhooks.WebhookSender.Queue];
            server.WorkerCount = provider.GetRequiredService<CoordinatorOptions>().Webhooks.Workers;
            server.SchedulePollingInterval = TimeSpan.FromSeconds(1);
        });
        services.AddSingleton<Webhooks.WebhookHttp>();
        services.AddTransient<Webhooks.WebhookSender>();
        services.AddSingleton<LeaseSweeper>();
        services.AddSingleton<ErrorQueues>();
        services.AddTransient<FarmMaintenance>();
        services.AddHostedService<MaintenanceSchedule>();
        return services;
    }
}
