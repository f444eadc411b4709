using System.Text.RegularExpressions;

namespace ProgrammableFilm.Domain.Money;

/// <summary>One broken rule of a money request, named by its JSON field.</summary>
public sealed record FieldError(string Field, string Message);

/// <summary>
/// What the price book and budgets accept. The bounds are far above any real price but catch a unit slip (a monthly
/// price typed as hourly, milliwatts as watts) before it bills.
/// </summary>
public static partial class MoneyRules
{
    /// <summary>Dollars per device-hour: an 8-GPU node is about $100/h; $1,000 per device is a typo.</summary>
    public const decimal MaxDollarsPerHour = 1_000m;

    /// <summary>Watts per device: a GB200 superchip is 2.7 kW.</summary>
    public const double MaxRatedWatts = 10_000;

    /// <summary>Grams CO2e per kWh: coal plants are about 1,000.</summary>
    public const double MaxGramsPerKwh = 2_000;

    /// <summary>A billion dollars: no film's compute budget is more.</summary>
    public const decimal MaxBudgetUsd = 1_000_000_000m;

    /// <summary>An entry may not take effect further back than this: the book must say what rows were billed at.</summary>
    public static readonly TimeSpan MaxBackdating = TimeSpan.FromMinutes(5);

    /// <summary>SKU, pool and project names: lower-case letters, digits and '-', 1 to 63 characters.</summary>
    public static bool IsName(string? name) => name is not null && NamePattern().IsMatch(name);

    public static void CheckDollars(string field, decimal value, decimal max, bool zeroAllowed, List<FieldError> errors)
    {
        if (value < 0 || (!zeroAllowed && value == 0))
        {
            errors.Add(new FieldError(field, zeroAllowed ? "must not be negative" : "must be above 0"));
        }
        else if (value > max)
        {
            errors.Add(new FieldError(field, $"must be at most {max:0.##}"));
        }
        else if (MoneyMath.Scale(value) > 6)
        {
            errors.Add(new FieldError(field, "must have at most six decimals (a millionth of a dollar)"));
        }
    }

    public static void CheckNumber(string field, double value, double min, double max, bool minAllowed, List<FieldError> errors)
    {
        if (!double.IsFinite(value))
        {
            errors.Add(new FieldError(field, "must be a finite number"));
        }
        else if (value < min || (!minAllowed && value == min) || value > max)
        {
            errors.Add(new FieldError(field, $"must be {(minAllowed ? "at least" : "above")} {min} and at most {max}"));
        }
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
