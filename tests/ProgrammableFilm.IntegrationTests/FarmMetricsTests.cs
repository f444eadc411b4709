using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// After a real render on the API and worker processes, both <c>/metrics</c> endpoints hold the farm's figures, and
/// the coordinator's equal what the database says: attempts by outcome, device time, cost and energy equal the usage
/// ledger; tasks by state equal the task table; every attempt has a dispatch latency; the queues are empty.
/// </summary>
[Collection(ObservedFarmCollection.Name)]
public sealed class FarmMetricsTests(ObservedFarmFixture farm)
{
    private const string ShotYaml = """
        project: it-metrics
        lane: preview
        shots:
          - name: metered
            prompt: a blue boat drifting on a lake at noon
            duration: 1
            fps: 24
            width: 64
            height: 64
            seed: 3
            engine: procedural
            keyframeInterval: 12
        """;

    [Fact]
    public async Task After_a_render_metrics_hold_the_farm_figures_equal_to_the_ledger_and_the_task_table()
    {
        using var api = new HttpClient { BaseAddress = farm.Api }.WithKey(farm.AdminKey);
        var jobId = await FarmChecks.SubmitAsync(api, "it-metrics", ShotYaml);
        await FarmChecks.WaitForJobAsync(api, jobId, "Succeeded", TimeSpan.FromMinutes(2), () => farm.Output);

        await using var db = farm.CreateDbContext();
        var ledger = await db.Usage.AsNoTracking().ToListAsync();
        var attempts = await db.Attempts.AsNoTracking().ToListAsync();
        var tasks = await db.Tasks.AsNoTracking().ToListAsync();
        Assert.Equal(6, tasks.Count);
        Assert.NotEmpty(ledger);

        // The database gauges are refreshed in the background (at most every 5 s): wait until a scrape agrees. The
        // fleet gauge is waited for too: a CI run once scraped a snapshot without the live worker, so a failure here
        // says when the coordinator last heard from it.
        PrometheusSamples metrics = null!;
        await farm.WaitForAsync(
            async () =>
            {
                metrics = await farm.ScrapeAsync(farm.Api);
                return metrics.Sum("pfilm_tasks", ("state", "Succeeded")) == tasks.Count
                    && metrics.Sum("pfilm_attempts_total") == ledger.Count
                    && metrics.Has("pfilm_error_queue_messages")
                    && metrics.Sum("pfilm_workers", ("pool", "cpu"), ("state", "live")) == 1;
            },
            TimeSpan.FromSeconds(30),
            "the API's /metrics to show the finished job and the live worker",
            async () =>
            {
                await using var fleet = farm.CreateDbContext();
                var seen = await fleet.Workers.AsNoTracking().Select(w => $"{w.Id} pool {w.Pool} last seen {w.LastSeenAt:O}").ToListAsync();
                return $"now {DateTime.UtcNow:O}; workers: {string.Join("; ", seen)}\n{metrics?.Text}";
            });

        foreach (var outcome in ledger.GroupBy(u => u.Outcome))
        {
            Assert.Equal(outcome.Count(), metrics.Sum("pfilm_attempts_total", ("outcome", outcome.Key), ("pool", "cpu"), ("device_sku", "cpu")));
        }

        AssertClose(ledger.Sum(u => u.DeviceSeconds), metrics.Sum("pfilm_device_time_seconds_total", ("project", "it-metrics"), ("device_sku", "cpu")));
        AssertClose((double)ledger.Sum(u => u.Cost), metrics.Sum("pfilm_cost_total", ("project", "it-metrics")));
        AssertClose(ledger.Sum(u => u.EnergyJoules), metrics.Sum("pfilm_energy_joules_total", ("project", "it-metrics")));
        Assert.True(ledger.Sum(u => u.EnergyJoules) > 0 && ledger.Sum(u => u.DeviceSeconds) > 0);

        // Every attempt was dispatched once (nothing failed, nothing was republished), each with its latency.
        Assert.Equal(attempts.Count, metrics.Sum("pfilm_dispatch_latency_seconds_count", ("pool", "cpu"), ("lane", "preview")));
        Assert.True(metrics.Sum("pfilm_dispatch_latency_seconds_sum") >= 0);
        Assert.Equal(attempts.Count, metrics.Sum("pfilm_dispatch_latency_seconds_bucket", ("le", "+Inf")));

        foreach (var state in Enum.GetValues<RenderTaskState>())
        {
            Assert.Equal(tasks.Count(t => t.State == state), metrics.Sum("pfilm_tasks", ("state", state.ToString())));
        }

        Assert.Equal(0, metrics.Sum("pfilm_queue_depth"));
        Assert.Equal(1, metrics.Sum("pfilm_workers", ("pool", "cpu"), ("state", "live")));
        Assert.Equal(1, metrics.Sum("pfilm_worker_slots", ("pool", "cpu")));
        Assert.Equal(0, metrics.Sum("pfilm_worker_slots_busy", ("pool", "cpu")));
        Assert.Equal(0, metrics.Sum("pfilm_worker_utilization", ("pool", "cpu")));
        Assert.Equal(6, metrics.LabelsOf("pfilm_error_queue_messages").Count());
        Assert.Equal(0, metrics.Sum("pfilm_error_queue_messages"));

        // The standard instrumentation is there too: HTTP server, MassTransit, Npgsql, the runtime.
        Assert.True(metrics.Has("http_server_request_duration_seconds_count"), "ASP.NET Core metrics");
        Assert.Contains("messaging_masstransit_", metrics.Text, StringComparison.Ordinal);
        Assert.Contains("db_client_", metrics.Text, StringComparison.Ordinal);
        Assert.Contains("dotnet_gc_", metrics.Text, StringComparison.Ordinal);

        // The worker exports the same way, from its own listener.
        var worker = await farm.ScrapeAsync(farm.Worker);
        Assert.Equal(1, worker.Sum("pfilm_worker_process_slots", ("worker", "observed-worker"), ("pool", "cpu")));
        Assert.Equal(0, worker.Sum("pfilm_worker_process_running", ("worker", "observed-worker")));
        Assert.True(worker.Sum("messaging_masstransit_receive_ea_total") >= attempts.Count, worker.Text);

        // The names the dashboard and the alert rules use (DeploymentFilesTests holds them to this list).
        Assert.All(FarmMetricNames.Coordinator, name => Assert.True(metrics.Has(name), $"{name} missing from the API's /metrics:\n{string.Join('\n', metrics.Text.Split('\n').Where(l => l.StartsWith("pfilm", StringComparison.Ordinal)))}"));
        Assert.All(FarmMetricNames.Worker, name => Assert.True(worker.Has(name), $"{name} missing from the worker's /metrics"));
    }

    private static void AssertClose(double expected, double actual) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-9 + (Math.Abs(expected) * 1e-9), $"expected {expected}, /metrics says {actual}");
}

/// <summary>The farm's metric names as Prometheus shows them (docs/configuration.md).</summary>
public static class FarmMetricNames
{
    public static readonly string[] Coordinator =
    [
        "pfilm_tasks", "pfilm_queue_depth", "pfilm_workers", "pfilm_worker_slots", "pfilm_worker_slots_busy", "pfilm_worker_utilization",
        "pfilm_error_queue_messages", "pfilm_dispatch_latency_seconds_bucket", "pfilm_dispatch_latency_seconds_sum", "pfilm_dispatch_latency_seconds_count",
        "pfilm_attempts_total", "pfilm_device_time_seconds_total", "pfilm_cost_total", "pfilm_energy_joules_total",
    ];

    public static readonly string[] Worker = ["pfilm_worker_process_slots", "pfilm_worker_process_running"];
}
