namespace ProgrammableFilm.Domain.Money;

/// <summary>
/// The farm's money rule, in one place. An attempt's cost is rounded once, when its ledger row is written, to a
/// millionth of a dollar, half away from zero (0.0000015 → 0.000002, 0.0000014 → 0.000001). Everything after that
/// (roll-ups, project spend, budgets, reports) adds those rounded costs as whole micro-dollars (<see cref="long"/>),
/// exactly, and never rounds again: a report's total is the sum of its rows to the micro-dollar.
/// </summary>
public static class MoneyMath
{
    public const long MicrosPerDollar = 1_000_000;

    /// <summary>Six decimals, half away from zero: the ledger's precision.</summary>
    public static decimal RoundToMicros(decimal dollars) => decimal.Round(dollars, 6, MidpointRounding.AwayFromZero);

    /// <summary>Whole micro-dollars of an amount already at the ledger's precision (throws if it has more decimals).</summary>
    public static long ToMicros(decimal dollars)
    {
        var micros = dollars * MicrosPerDollar;
        if (micros != decimal.Truncate(micros))
        {
            throw new ArgumentException($"{dollars} has more than six decimals", nameof(dollars));
        }

        return (long)micros;
    }

    public static decimal FromMicros(long micros) => micros / (decimal)MicrosPerDollar;

    /// <summary>The number of decimals an amount is written with (12.50 has 2).</summary>
    public static int Scale(decimal amount) => (decimal.GetBits(amount)[3] >> 16) & 0xFF;
}
