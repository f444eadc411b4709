using System.Data.Common;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using Contract = ProgrammableFilm.Contracts;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// The farm's metrics (meter <see cref="MeterName"/>) and the coordinator's spans (source <see cref="ActivitySourceName"/>).
/// Two kinds of instrument:
/// <list type="bullet">
/// <item>state read from the database (tasks by state, queue depth per pool and lane, workers and their slots, error
/// queues): observable gauges over a snapshot of a few cheap aggregate queries, refreshed in the background at most
/// every <see cref="SnapshotTtl"/> and only while something observes them (a scrape, an OTLP export). A scrape never
/// waits for the database: it sees the previous snapshot, so values lag by up to one scrape interval. Every
/// coordinator replica reports the same state: aggregate these with <c>max</c>, not <c>sum</c>.</item>
/// <item>events counted where they happen (dispatch latency at attempt creation, attempts, device time, cost and
/// energy when the ledger appends, counted only once the ledger row is committed): sum these across replicas.</item>
/// </list>
/// </summary>
public sealed class FarmMetrics
{
    public const string MeterName = "ProgrammableFilm";

    public const string ActivitySourceName = "ProgrammableFilm.Coordinator";

    /// <summary>The coordinator's spans: one <c>dispatch</c> span starts each attempt's trace.</summary>
    public static readonly ActivitySource Tracing = new(ActivitySourceName);

    private static readonly TimeSpan SnapshotTtl = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ErrorQueueTtl = TimeSpan.FromSeconds(15);

    private readonly IServiceProvider _services;
    private readonly CoordinatorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<FarmMetrics> _logger;
    private readonly Histogram<double> _dispatchLatency;
    private readonly Counter<long> _attempts;
    private readonly Counter<double> _deviceTime;
    private readonly Counter<double> _cost;
    private readonly Counter<double> _energy;
    private readonly ConditionalWeakTable<DbContext, List<(UsageRecord Record, string Pool)>> _uncommitted = [];
    private Snapshot _snapshot = Snapshot.Empty;
    private IReadOnlyList<ErrorQueueCount> _errorQueues = [];
    private long _snapshotAt;
    private long _errorQueuesAt;
    private int _refreshing;

    public FarmMetrics(IMeterFactory meterFactory, IServiceProvider services, CoordinatorOptions options, TimeProvider time, ILogger<FarmMetrics> logger)
    {
        _services = services;
        _options = options;
        _time = time;
        _logger = logger;
        var meter = meterFactory.Create(MeterName);
        _dispatchLatency = meter.CreateHistogram<double>("pfilm.dispatch.latency", "s", "From the moment a task could run (Ready, past its retry backoff) to its attempt's creation by the dispatcher.");
        _attempts = meter.CreateCounter<long>("pfilm.attempts", "{attempt}", "Attempts billed in the usage ledger, by outcome (succeeded, failed, cancelled, lost).");
        _deviceTime = meter.CreateCounter<double>("pfilm.device.time", "s", "Device-seconds billed (wall time × devices held; a CPU device is a core).");
        _cost = meter.CreateCounter<double>("pfilm.cost", "{USD}", "Money billed, in US dollars, at the price in force for the device SKU.");
        _energy = meter.CreateCounter<double>("pfilm.energy", "J", "Energy billed, in joules (measured or estimated from the rated power).");
        meter.CreateObservableGauge("pfilm.tasks", () => Observe(s => s.Tasks), "{task}", "Tasks by state.");
        meter.CreateObservableGauge("pfilm.queue.depth", () => Observe(s => s.QueueDepth), "{task}", "Tasks waiting for a worker (Ready, or dispatched and not yet claimed), by pool and lane.");
        meter.CreateObservableGauge("pfilm.workers", () => Observe(s => s.Workers), "{worker}", "Workers by pool: live (heard within the lease) and lost (silent longer, seen within the last hour).");
        meter.CreateObservableGauge("pfilm.worker.slots", () => Observe(s => s.Slots), "{slot}", "Attempt slots of live workers, by pool.");
        meter.CreateObservableGauge("pfilm.worker.slots.busy", () => Observe(s => s.BusySlots), "{slot}", "Claimed attempts (slots in use), by pool.");
        meter.CreateObservableGauge("pfilm.worker.utilization", () => Observe(s => s.Utilization), "1", "Busy slots ÷ slots of live workers, by pool.");
        meter.CreateObservableGauge("pfilm.error_queue.messages", ObserveErrorQueues, "{message}", "Messages in the farm's _error queues (should be none).");
    }

    /// <summary>The dispatcher created an attempt for <paramref name="task"/> (called per attempt, in the creating pass).</summary>
    public void Dispatched(DateTime runnableSince, int lane, string pool, DateTime now)
    {
        _dispatchLatency.Record(Math.Max(0, (now - runnableSince).TotalSeconds), new("pool", pool), new("lane", LaneName(lane)));
    }

    /// <summary>
    /// The ledger appended <paramref name="record"/> through <paramref name="db"/>. Inside a transaction it is counted
    /// when the transaction commits (<see cref="CommitInterceptor"/>): a rolled-back row is billed again by the
    /// retried event, and must be counted once, like the ledger.
    /// </summary>
    public void Billed(DbContext db, UsageRecord record, string pool)
    {
        if (db.Database.CurrentTransaction is null)
        {
            Count(record, pool);
            return;
        }

        lock (_uncommitted)
        {
            _uncommitted.GetOrCreateValue(db).Add((record, pool));
        }
    }

    /// <summary>
    /// Records the span of one dispatch, the root of the attempt's trace, linked to the job's submission; returns the
    /// attempt carrying that span's context, which the worker's run of it continues.
    /// </summary>
    public static Contract.RenderTask TraceDispatch(Contract.RenderTask message)
    {
        ActivityLink[]? links = message.JobTraceParent is { } parent && ActivityContext.TryParse(parent, null, out var job) ? [new ActivityLink(job)] : null;
        using var activity = Tracing.StartActivity(ActivityKind.Producer, parentContext: default, links: links, name: $"dispatch {message.Kind}");
        if (activity is null)
        {
            return message;
        }

        activity.SetTag("pfilm.job.id", message.JobId)
            .SetTag("pfilm.shot.id", message.ShotId)
            .SetTag("pfilm.task.id", message.TaskId)
            .SetTag("pfilm.task.kind", message.Kind)
            .SetTag("pfilm.attempt.id", message.AttemptId);
        return message with { TraceParent = activity.Id };
    }

    /// <summary>
    /// Starts the span of a bundle's send: a trace of its own (the broker, the worker's consume and its claim follow it),
    /// linked to the dispatch span of every attempt it carries.
    /// </summary>
    public static Activity? StartBundleSend(IReadOnlyList<Contract.RenderTask> tasks, string pool)
    {
        var links = tasks.Select(t => t.TraceParent is { } parent && ActivityContext.TryParse(parent, null, out var dispatch) ? new ActivityLink(dispatch) : default)
            .Where(link => link.Context != default)
            .ToList();
        return Tracing.StartActivity(ActivityKind.Producer, parentContext: default, links: links, name: "send bundle")?
            .SetTag("pfilm.pool", pool)
            .SetTag("pfilm.bundle.size", tasks.Count);
    }

    private void Committed(DbContext db, bool committed)
    {
        List<(UsageRecord Record, string Pool)>? rows;
        lock (_uncommitted)
        {
            if (!_uncommitted.TryGetValue(db, out rows))
            {
                return;
            }

            _uncommitted.Remove(db);
        }

        if (committed)
        {
            foreach (var (record, pool) in rows)
            {
                Count(record, pool);
            }
        }
    }

    private void Count(UsageRecord record, string pool)
    {
        var tags = new TagList { { "outcome", record.Outcome }, { "pool", pool }, { "device_sku", record.DeviceSku } };
        _attempts.Add(1, tags);
        var usage = new TagList { { "pool", pool }, { "device_sku", record.DeviceSku }, { "project", record.Project } };
        _deviceTime.Add(record.DeviceSeconds, usage);
        _cost.Add((double)record.Cost, usage);
        _energy.Add(record.EnergyJoules, usage);
    }

    private IEnumerable<Measurement<double>> Observe(Func<Snapshot, IEnumerable<Measurement<double>>> select)
    {
        if (_time.GetElapsedTime(Interlocked.Read(ref _snapshotAt)) > SnapshotTtl && Interlocked.Exchange(ref _refreshing, 1) == 0)
        {
            _ = RefreshAsync();
        }

        return select(_snapshot);
    }

    private IEnumerable<Measurement<long>> ObserveErrorQueues()
    {
        if (_time.GetElapsedTime(Interlocked.Read(ref _errorQueuesAt)) > ErrorQueueTtl && _services.GetService<ErrorQueues>() is { } queues)
        {
            Interlocked.Exchange(ref _errorQueuesAt, _time.GetTimestamp());
            _ = RefreshErrorQueuesAsync(queues);
        }

        return _errorQueues.Select(q => new Measurement<long>(q.Messages, new KeyValuePair<string, object?>("queue", q.Queue)));
    }

    private async Task RefreshAsync()
    {
        try
        {
            _snapshot = await ReadSnapshotAsync(CancellationToken.None);
            Interlocked.Exchange(ref _snapshotAt, _time.GetTimestamp());
        }
        catch (Exception e)
        {
            // The database is away: the gauges keep their last values; the health endpoint says what is wrong.
            _logger.LogDebug(e, "Farm metrics not refreshed");
        }
        finally
        {
            Volatile.Write(ref _refreshing, 0);
        }
    }

    private async Task RefreshErrorQueuesAsync(ErrorQueues queues)
    {
        try
        {
            _errorQueues = await queues.CountAsync(CancellationToken.None);
        }
        catch (Exception e)
        {
            _logger.LogDebug(e, "Error-queue depth not refreshed");
        }
    }

    private async Task<Snapshot> ReadSnapshotAsync(CancellationToken cancellationToken)
    {
        // Resolved here, not injected: the context's options hold this class's commit interceptor.
        await using var db = await _services.GetRequiredService<IDbContextFactory<FarmDbContext>>().CreateDbContextAsync(cancellationToken);
        var tasks = await db.Tasks.GroupBy(t => t.State).Select(g => new { State = g.Key, Count = g.Count() }).ToListAsync(cancellationToken);
        var pools = await DashboardReports.PoolsAsync(db, _options, _time.GetUtcNow().UtcDateTime, cancellationToken);
        return new Snapshot(
            Enum.GetValues<RenderTaskState>().Select(state => Gauge(tasks.Where(t => t.State == state).Sum(t => t.Count), ("state", state.ToString()))).ToList(),
            pools.SelectMany(p => new[] { Gauge(p.QueuedPreview, ("pool", p.Pool), ("lane", "preview")), Gauge(p.QueuedBatch, ("pool", p.Pool), ("lane", "batch")) }).ToList(),
            pools.SelectMany(p => new[] { Gauge(p.LiveWorkers, ("pool", p.Pool), ("state", "live")), Gauge(p.LostWorkers, ("pool", p.Pool), ("state", "lost")) }).ToList(),
            pools.Select(p => Gauge(p.Slots, ("pool", p.Pool))).ToList(),
            pools.Select(p => Gauge(p.BusySlots, ("pool", p.Pool))).ToList(),
            pools.Select(p => Gauge(p.Utilization, ("pool", p.Pool))).ToList());
    }

    private static Measurement<double> Gauge(double value, params (string Key, string Value)[] tags) =>
        new(value, tags.Select(t => new KeyValuePair<string, object?>(t.Key, t.Value)));

    private static string LaneName(int lane) => lane == 0 ? "preview" : "batch";

    private sealed record Snapshot(
        IReadOnlyList<Measurement<double>> Tasks,
        IReadOnlyList<Measurement<double>> QueueDepth,
        IReadOnlyList<Measurement<double>> Workers,
        IReadOnlyList<Measurement<double>> Slots,
        IReadOnlyList<Measurement<double>> BusySlots,
        IReadOnlyList<Measurement<double>> Utilization)
    {
        public static Snapshot Empty { get; } = new([], [], [], [], [], []);
    }

    /// <summary>Counts the ledger rows of a transaction when it commits; forgets them when it rolls back.</summary>
    public sealed class CommitInterceptor(FarmMetrics metrics) : DbTransactionInterceptor
    {
        public override void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => End(eventData, committed: true);

        public override Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            End(eventData, committed: true);
            return Task.CompletedTask;
        }

        public override void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData) => End(eventData, committed: false);

        public override Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            End(eventData, committed: false);
            return Task.CompletedTask;
        }

        private void End(TransactionEndEventData eventData, bool committed)
        {
            if (eventData.Context is { } context)
            {
                metrics.Committed(context, committed);
            }
        }
    }
}
