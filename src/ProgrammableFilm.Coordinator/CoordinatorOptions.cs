using Microsoft.Extensions.Configuration;
using ProgrammableFilm.Domain.Costs;

namespace ProgrammableFilm.Coordinator;

/// <summary>Coordinator settings (section <c>Coordinator</c>) and the price table (section <c>Pricing</c>).</summary>
public sealed record CoordinatorOptions
{
    /// <summary>
    /// Unclaimed messages allowed per pool. Kept small so that scheduling order is decided in the database, by policy,
    /// rather than by broker FIFO.
    /// </summary>
    public int MaxQueuedPerPool { get; init; } = 8;

    /// <summary>How often the dispatcher looks for work when nothing wakes it.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>An attempt published this long ago and still unclaimed is published again (the message may be lost).</summary>
    public TimeSpan RepublishAfter { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The pool that runs each engine's tasks.</summary>
    public string Pool { get; init; } = "cpu";

    public PriceTable Prices { get; init; } = PriceTable.Default;

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
            PollInterval = section.GetValue("PollInterval", options.PollInterval),
            RepublishAfter = section.GetValue("RepublishAfter", options.RepublishAfter),
            Pool = section.GetValue("Pool", options.Pool)!,
            Prices = prices.Count == 0 ? PriceTable.Default : new PriceTable(PriceTable.Default.Prices.Where(d => prices.All(p => p.Sku != d.Sku)).Concat(prices)),
        };
    }
}
