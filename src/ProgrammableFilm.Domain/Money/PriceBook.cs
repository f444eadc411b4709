namespace ProgrammableFilm.Domain.Money;

/// <summary>A device SKU's price from <see cref="EffectiveFrom"/> on; <see cref="Project"/> null for the farm's own price.</summary>
public sealed record DevicePriceEntry(string Sku, string? Project, DateTime EffectiveFrom, decimal DollarsPerHour, double RatedWatts);

/// <summary>A pool's grid carbon intensity from <see cref="EffectiveFrom"/> on; pool <c>*</c> stands for every pool without its own.</summary>
public sealed record CarbonIntensityEntry(string Pool, string? Project, DateTime EffectiveFrom, double GramsPerKwh);

/// <summary>What an attempt is billed at: the SKU's price and rated power and the pool's carbon intensity in force.</summary>
public sealed record BillingRates(string Sku, decimal DollarsPerHour, double RatedWatts, double GramsCo2ePerKwh);

/// <summary>
/// The effective-dated price book (pure: the coordinator keeps a copy in memory). At any time a SKU costs its
/// project's override in force, else the farm's price in force; an override stays in force however the farm price
/// changes after it. A pool's carbon intensity is looked up as the project's for the pool, the project's for
/// <c>*</c>, the farm's for the pool, then the farm's for <c>*</c>.
/// </summary>
public sealed class PriceBook
{
    /// <summary>The pool name that stands for every pool without an intensity of its own.</summary>
    public const string AnyPool = "*";

    private readonly Dictionary<(string Sku, string Project), DevicePriceEntry[]> _devices;
    private readonly Dictionary<(string Pool, string Project), CarbonIntensityEntry[]> _carbon;

    public PriceBook(IEnumerable<DevicePriceEntry> devices, IEnumerable<CarbonIntensityEntry> carbon)
    {
        Devices = [.. devices.OrderBy(d => d.Sku, StringComparer.Ordinal).ThenBy(d => d.Project, StringComparer.Ordinal).ThenBy(d => d.EffectiveFrom)];
        Carbon = [.. carbon.OrderBy(c => c.Pool, StringComparer.Ordinal).ThenBy(c => c.Project, StringComparer.Ordinal).ThenBy(c => c.EffectiveFrom)];
        _devices = Devices.GroupBy(d => (d.Sku, d.Project ?? "")).ToDictionary(g => g.Key, g => g.ToArray());
        _carbon = Carbon.GroupBy(c => (c.Pool, c.Project ?? "")).ToDictionary(g => g.Key, g => g.ToArray());
    }

    public IReadOnlyList<DevicePriceEntry> Devices { get; }

    public IReadOnlyList<CarbonIntensityEntry> Carbon { get; }

    /// <summary>True when the farm has a price for the SKU (at any time): project overrides are of known SKUs only.</summary>
    public bool Knows(string sku) => _devices.ContainsKey((sku, ""));

    /// <summary>The SKU's price for the project at <paramref name="at"/>; null when none is in force.</summary>
    public DevicePriceEntry? PriceFor(string sku, string project, DateTime at) =>
        InForce(_devices.GetValueOrDefault((sku, project)), at, e => e.EffectiveFrom) ?? InForce(_devices.GetValueOrDefault((sku, "")), at, e => e.EffectiveFrom);

    /// <summary>The pool's carbon intensity for the project at <paramref name="at"/>; null when none is in force.</summary>
    public CarbonIntensityEntry? CarbonFor(string pool, string project, DateTime at) =>
        InForce(_carbon.GetValueOrDefault((pool, project)), at, e => e.EffectiveFrom)
        ?? InForce(_carbon.GetValueOrDefault((AnyPool, project)), at, e => e.EffectiveFrom)
        ?? InForce(_carbon.GetValueOrDefault((pool, "")), at, e => e.EffectiveFrom)
        ?? InForce(_carbon.GetValueOrDefault((AnyPool, "")), at, e => e.EffectiveFrom);

    /// <summary>
    /// What an attempt of the project on <paramref name="sku"/> in <paramref name="pool"/> is billed at. An unknown SKU
    /// is an operator error, reported rather than billed at zero; no carbon intensity at all counts as 0 g/kWh.
    /// </summary>
    public BillingRates RatesFor(string sku, string pool, string project, DateTime at)
    {
        var price = PriceFor(sku, project, at) ?? throw new KeyNotFoundException($"No price for device SKU '{sku}' at {at:O}; add one with POST /api/prices/devices.");
        return new BillingRates(sku, price.DollarsPerHour, price.RatedWatts, CarbonFor(pool, project, at)?.GramsPerKwh ?? 0);
    }

    /// <summary>The SKUs and pools the book names, each with what is in force for the project at <paramref name="at"/>.</summary>
    public (IReadOnlyList<DevicePriceEntry> Devices, IReadOnlyList<CarbonIntensityEntry> Carbon) InForceFor(string? project, DateTime at) => (
        [.. _devices.Keys.Select(k => k.Sku).Distinct().Order(StringComparer.Ordinal).Select(sku => project is null ? InForce(_devices[(sku, "")], at, e => e.EffectiveFrom) : PriceFor(sku, project, at)).OfType<DevicePriceEntry>()],
        [.. _carbon.Keys.Select(k => k.Pool).Distinct().Order(StringComparer.Ordinal).Select(pool => project is null ? InForce(_carbon.GetValueOrDefault((pool, "")), at, e => e.EffectiveFrom) : CarbonFor(pool, project, at)).OfType<CarbonIntensityEntry>()]);

    /// <summary>The latest entry that started at or before <paramref name="at"/> (entries are sorted by start).</summary>
    private static T? InForce<T>(T[]? entries, DateTime at, Func<T, DateTime> start) where T : class
    {
        if (entries is null)
        {
            return null;
        }

        for (var i = entries.Length - 1; i >= 0; i--)
        {
            if (start(entries[i]) <= at)
            {
                return entries[i];
            }
        }

        return null;
    }
}
