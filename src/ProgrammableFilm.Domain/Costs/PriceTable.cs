namespace ProgrammableFilm.Domain.Costs;

/// <summary>The price of one device SKU: dollars per device-hour and the rated power used to estimate energy.</summary>
public sealed record DevicePrice(string Sku, decimal DollarsPerHour, double RatedWatts);

/// <summary>
/// Prices per device SKU. For <c>cpu</c> the device is one core, so a 2-core attempt of 10 s is 20 device-seconds.
/// </summary>
public sealed class PriceTable(IEnumerable<DevicePrice> prices)
{
    private readonly Dictionary<string, DevicePrice> _prices = prices.ToDictionary(p => p.Sku, StringComparer.Ordinal);

    /// <summary>Public on-demand prices (late 2026) as defaults; configuration overrides them.</summary>
    public static PriceTable Default { get; } = new([
        new DevicePrice("cpu", 0.0400m, 12),
        new DevicePrice("h100-80g", 4.5000m, 700),
        new DevicePrice("a100-80g", 2.2000m, 400),
        new DevicePrice("l40s", 1.9000m, 350),
    ]);

    public IReadOnlyCollection<DevicePrice> Prices => _prices.Values;

    /// <summary>The price of a SKU; an unknown SKU is an operator error, reported rather than billed at zero.</summary>
    public DevicePrice For(string sku) => _prices.TryGetValue(sku, out var price)
        ? price
        : throw new KeyNotFoundException($"No price for device SKU '{sku}'; add it to Pricing:Devices.");

    public bool Contains(string sku) => _prices.ContainsKey(sku);
}

/// <summary>Cost arithmetic, kept in <see cref="decimal"/> so that sums of many small charges do not drift.</summary>
public static class CostCalculator
{
    /// <summary>
    /// Dollars for <paramref name="deviceSeconds"/> at a price per device-hour: the attempt's cost, rounded once to a
    /// millionth of a dollar, half away from zero (<see cref="Money.MoneyMath.RoundToMicros"/>).
    /// </summary>
    public static decimal Cost(double deviceSeconds, decimal dollarsPerHour)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(deviceSeconds);
        return Money.MoneyMath.RoundToMicros((decimal)deviceSeconds * dollarsPerHour / 3600m);
    }

    /// <summary>Grams of CO2e for energy drawn from a grid of the given intensity (gCO2e per kWh).</summary>
    public static double Co2eGrams(double joules, double gramsPerKwh) => joules / 3.6e6 * gramsPerKwh;

    /// <summary>Energy from rated power when the device reports none.</summary>
    public static double EstimatedJoules(double deviceSeconds, double ratedWatts) => deviceSeconds * ratedWatts;
}
