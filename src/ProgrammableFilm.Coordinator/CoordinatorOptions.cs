using Microsoft.Extensions.Configuration;
using ProgrammableFilm.Domain.Costs;

namespace ProgrammableFilm.Coordinator;

/// <summary>Coordinator settings (section <c>Coordinator</c>) and the price table (section <c>Pricing</c>).</summary>
public sealed record CoordinatorOptions
{
    /// <summary>
    /// Unclaimed messages allowed per pool, at least; the dispatcher allows two per live worker slot when that is more.
    /// Kept small so that scheduling order is decided in the database, by policy, rather than by broker FIFO.
    /// </summary>
    public int MaxQueuedPerPool { get; init; } = 8;

    /// <summary>
    /// Expected seconds of work a bundle carries at most (<c>Coordinator:BundleSeconds</c>; 0 sends every attempt on
    /// its own): short tasks travel several to a message, see <see cref="Domain.Scheduling.Bundling"/>.
    /// </summary>
    public double BundleSeconds { get; init; } = 1.0;

    /// <summary>Attempts one bundle carries at most (<c>Coordinator:MaxBundle</c>).</summary>
    public int MaxBundle { get; init; } = 32;

    /// <summary>How often the dispatcher looks for work when nothing wakes it.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>An attempt published this long ago and still unclaimed is published again (the message may be lost).</summary>
    public TimeSpan RepublishAfter { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A claimed attempt not heard from for this long is declared Lost and its task runs again.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the lease sweep runs (Hangfire, seconds granularity).</summary>
    public TimeSpan SweepInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>First retry delay of a transient failure; doubled for each further failure of the task.</summary>
    public TimeSpan RetryBackoff { get; init; } = TimeSpan.FromSeconds(2);

    public TimeSpan RetryBackoffMax { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>A task lost this many times fails: it is probably what kills its workers.</summary>
    public int MaxLostAttempts { get; init; } = 5;

    /// <summary>Failures of one worker on one job's tasks that block it for that job (0: never).</summary>
    public int BlocklistThreshold { get; init; } = 3;

    /// <summary>A blocked worker is forgiven after this long.</summary>
    public TimeSpan BlocklistForgiveAfter { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Intermediate frames of a finished shot are deleted this long after it finished (its MP4 and manifest stay).</summary>
    public TimeSpan FrameRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>
    /// A job with more tasks than this shows task counts from a roll-up at most <see cref="StatusRollupMaxAge"/> old
    /// instead of counting its tasks on every status read.
    /// </summary>
    public int StatusRollupAbove { get; init; } = 5_000;

    /// <summary>How stale a big job's task counts may be; the first status read after that counts them again.</summary>
    public TimeSpan StatusRollupMaxAge { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// A job of more tasks than this is accepted at once as <c>Planning</c> and planned in the background, a shot per
    /// transaction; smaller jobs are planned inside the submitting request.
    /// </summary>
    public int PlanInBackgroundAbove { get; init; } = 200_000;

    /// <summary>
    /// Tasks of the jobs <see cref="PlanningWarmUp"/> plans and rolls back at the start (PostgreSQL only; 0: none), so
    /// that the first big job a studio submits is planned at a warm process's speed.
    /// </summary>
    public int PlanningWarmUpTasks { get; init; } = 20_000;

    /// <summary>The pool that runs each engine's tasks.</summary>
    public string Pool { get; init; } = "cpu";

    /// <summary>The device prices the price book starts with (<c>Pricing:Devices</c> over the defaults); see <see cref="Money.PriceBookCache"/>.</summary>
    public PriceTable Prices { get; init; } = PriceTable.Default;

    /// <summary>
    /// The grid carbon intensities (gCO2e/kWh) the price book starts with, per pool (<c>Pricing:Carbon:{pool}</c>);
    /// <c>*</c> (<c>Pricing:DefaultGramsCo2ePerKwh</c>, 400: roughly the world's average grid) covers every other pool.
    /// </summary>
    public IReadOnlyDictionary<string, double> CarbonIntensities { get; init; } = new Dictionary<string, double>(StringComparer.Ordinal) { ["*"] = 400 };

    /// <summary>How old the in-memory price book may be before billing reads it again (<c>Pricing:RefreshInterval</c>).</summary>
    public TimeSpan PriceBookRefresh { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The most bytes one camera plate upload may hold (all its files together).</summary>
    public long PlateMaxBytes { get; init; } = 256L << 20;

    /// <summary>The ffmpeg that decodes uploaded plates into frames.</summary>
    public string FfmpegPath { get; init; } = "ffmpeg";

    /// <summary>Where and how webhooks are delivered (section <c>Webhooks</c>).</summary>
    public ProgrammableFilm.Coordinator.Webhooks.WebhookSettings Webhooks { get; init; } = new();

    public static CoordinatorOptions FromConfiguration(IConfiguration configuration)
    {
        var options = new CoordinatorOptions();
        var section = configuration.GetSection("Coordinator");
        var prices = configuration.GetSection("Pricing:Devices").GetChildren()
            .Select(device => new DevicePrice(
                device.Key,
                decimal.Parse(device["DollarsPerHour"] ?? throw new InvalidOperationException($"Pricing:Devices:{device.Key}:DollarsPerHour is missing."), System.Globalization.CultureInfo.InvariantCulture),
                double.Parse(device["RatedWatts"] ?? "0", System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();
        return options with
        {
            MaxQueuedPerPool = section.GetValue("MaxQueuedPerPool", options.MaxQueuedPerPool),
            BundleSeconds = section.GetValue("BundleSeconds", options.BundleSeconds),
            MaxBundle = Math.Max(1, section.GetValue("MaxBundle", options.MaxBundle)),
            PollInterval = section.GetValue("PollInterval", options.PollInterval),
            RepublishAfter = section.GetValue("RepublishAfter", options.RepublishAfter),
            LeaseDuration = section.GetValue("LeaseDuration", options.LeaseDuration),
            SweepInterval = section.GetValue("SweepInterval", options.SweepInterval),
            RetryBackoff = section.GetValue("RetryBackoff", options.RetryBackoff),
            RetryBackoffMax = section.GetValue("RetryBackoffMax", options.RetryBackoffMax),
            MaxLostAttempts = section.GetValue("MaxLostAttempts", options.MaxLostAttempts),
            BlocklistThreshold = section.GetValue("BlocklistThreshold", options.BlocklistThreshold),
            BlocklistForgiveAfter = section.GetValue("BlocklistForgiveAfter", options.BlocklistForgiveAfter),
            FrameRetention = section.GetValue("FrameRetention", options.FrameRetention),
            StatusRollupAbove = section.GetValue("StatusRollupAbove", options.StatusRollupAbove),
            StatusRollupMaxAge = section.GetValue("StatusRollupMaxAge", options.StatusRollupMaxAge),
            PlanInBackgroundAbove = section.GetValue("PlanInBackgroundAbove", options.PlanInBackgroundAbove),
            PlanningWarmUpTasks = section.GetValue("PlanningWarmUpTasks", options.PlanningWarmUpTasks),
            Pool = section.GetValue("Pool", options.Pool)!,
            PlateMaxBytes = section.GetValue("PlateMaxBytes", options.PlateMaxBytes),
            FfmpegPath = section.GetValue("FfmpegPath", options.FfmpegPath)!,
            CarbonIntensities = configuration.GetSection("Pricing:Carbon").GetChildren()
                .Select(pool => (Key: pool.Key, Grams: double.Parse(pool.Value ?? throw new InvalidOperationException($"Pricing:Carbon:{pool.Key} is empty."), System.Globalization.CultureInfo.InvariantCulture)))
                .Append((Key: "*", Grams: configuration.GetValue("Pricing:DefaultGramsCo2ePerKwh", 400.0)))
                .DistinctBy(p => p.Key)
                .ToDictionary(p => p.Key, p => p.Grams, StringComparer.Ordinal),
            PriceBookRefresh = configuration.GetValue("Pricing:RefreshInterval", options.PriceBookRefresh),
            Webhooks = ProgrammableFilm.Coordinator.Webhooks.WebhookSettings.FromConfiguration(configuration),
            Prices = prices.Count == 0 ? PriceTable.Default : new PriceTable(PriceTable.Default.Prices.Where(d => prices.All(p => p.Sku != d.Sku)).Concat(prices)),
        };
    }
}
