using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using ProgrammableFilm.Coordinator;

namespace ProgrammableFilm.Api.Dashboard;

/// <summary>
/// Pushes the dashboard's live updates. Once a second, and only while a browser is connected, a few aggregate queries
/// read the fleet, the progress and cost of the watched projects' unfinished jobs and the ledger's newest row; only
/// what changed since the last tick is sent. Reading the database rather than observing the bus keeps every
/// coordinator replica right without a SignalR backplane (each consumes only a share of the events, but all read the
/// same truth) and keeps the dashboard independent of how the coordinator handles events.
/// </summary>
public sealed class LiveUpdates(
    IHubContext<FarmHub> hub,
    LiveSubscriptions subscriptions,
    DashboardReports reports,
    TimeProvider time,
    ILogger<LiveUpdates> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>A finished job is still read this long after it finished, so that its last state is pushed once.</summary>
    private static readonly TimeSpan FinishedGrace = TimeSpan.FromMinutes(1);

    /// <summary>Budget crossings pushed per tick at most; more wait for the next (a burst is a few per project).</summary>
    private const int AlertsPerTick = 100;

    private readonly Dictionary<Guid, JobProgress> _jobs = [];
    private string? _fleet;
    private long? _ledger;
    private long? _alert;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (!subscriptions.Any)
            {
                // Nobody listens: forget what was sent, so that the next browser gets the current state, not a diff.
                _jobs.Clear();
                _fleet = null;
                _ledger = null;
                _alert = null;
                continue;
            }

            try
            {
                await TickAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // The database is away: the dashboard keeps its last values and the next tick tries again.
                logger.LogDebug(e, "Live dashboard update skipped");
            }
        }
    }

    private async Task TickAsync(CancellationToken cancellationToken)
    {
        var fleet = await reports.FleetAsync(cancellationToken);
        var fleetJson = JsonSerializer.Serialize(fleet.Pools) + JsonSerializer.Serialize(fleet.Workers.Select(w => (w.Id, w.State, w.RunningAttempts)));
        if (fleetJson != _fleet)
        {
            await hub.Clients.Group(FarmHub.FleetGroup).SendAsync("fleet", fleet, cancellationToken);
            _fleet = fleetJson;
        }

        var projects = subscriptions.WatchedProjects();
        var jobs = await reports.LiveJobsAsync(projects, time.GetUtcNow().UtcDateTime - FinishedGrace, cancellationToken);
        foreach (var job in jobs)
        {
            if (!_jobs.TryGetValue(job.Id, out var sent) || sent != job)
            {
                await hub.Clients.Group(FarmHub.GroupOf(job.Project)).SendAsync("job", job, cancellationToken);
                _jobs[job.Id] = job;
            }
        }

        var current = jobs.Select(j => j.Id).ToHashSet();
        foreach (var gone in _jobs.Keys.Where(id => !current.Contains(id)).ToList())
        {
            _jobs.Remove(gone);
        }

        var ledger = await reports.LastLedgerIdAsync(cancellationToken);
        if (_ledger is { } seen && ledger > seen)
        {
            foreach (var project in (await reports.ProjectsBilledAfterAsync(seen, cancellationToken)).Intersect(projects, StringComparer.Ordinal))
            {
                await hub.Clients.Group(FarmHub.GroupOf(project)).SendAsync("spend", new { project }, cancellationToken);
            }
        }

        _ledger = ledger;

        // A crossing by a lowered budget bills nothing, so the spend push does not tell of it: crossings have their own.
        if (_alert is not { } seenAlert)
        {
            _alert = await reports.LastBudgetAlertIdAsync(cancellationToken);
            return;
        }

        var alerts = await reports.BudgetAlertsAfterAsync(seenAlert, AlertsPerTick, cancellationToken);
        foreach (var alert in alerts.Where(a => projects.Contains(a.Project, StringComparer.Ordinal)))
        {
            await hub.Clients.Group(FarmHub.GroupOf(alert.Project)).SendAsync("budget", new { alert.Project, alert.JobId, alert.Level }, cancellationToken);
        }

        _alert = alerts.Count > 0 ? alerts[^1].Id : seenAlert;
    }
}
