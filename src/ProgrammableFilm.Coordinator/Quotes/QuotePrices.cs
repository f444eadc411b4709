using ProgrammableFilm.Domain.Costs;

namespace ProgrammableFilm.Coordinator.Quotes;

/// <summary>
/// The price a quote is made at. Today's prices are the configured table (<see cref="CoordinatorOptions.Prices"/>);
/// a price book with per-project overrides and effective dates answers the same question, so it replaces this one
/// method and nothing else of the quote.
/// </summary>
public sealed class QuotePrices(CoordinatorOptions options)
{
    /// <summary>The price of <paramref name="deviceSku"/> for <paramref name="project"/> in force at <paramref name="at"/>; null for an unpriced SKU.</summary>
    public DevicePrice? PriceFor(string project, string deviceSku, DateTime at) =>
        options.Prices.Contains(deviceSku) ? options.Prices.For(deviceSku) : null;
}
