using ProgrammableFilm.Domain.Costs;
using ProgrammableFilm.Domain.Money;

namespace ProgrammableFilm.Domain.Tests;

/// <summary>
/// The money rule: an attempt's cost is rounded once, when it is billed, to a millionth of a dollar, half away from
/// zero; sums add those micro-dollars exactly and never round again.
/// </summary>
public class MoneyTests
{
    [Theory]
    [InlineData(0.05, 0.036, 0.000001)] // $0.0000005: the half rounds up (away from zero)
    [InlineData(0.049, 0.036, 0)] // $0.00000049: down
    [InlineData(0.14, 0.036, 0.000001)] // $0.0000014: down
    [InlineData(0.15, 0.036, 0.000002)] // $0.0000015: the half rounds up, not to even
    [InlineData(0.25, 0.036, 0.000003)] // $0.0000025: up (banker's rounding would say 0.000002)
    [InlineData(0.16, 0.036, 0.000002)] // $0.0000016: up
    [InlineData(3600, 4.5, 4.5)]
    [InlineData(1, 2.7, 0.00075)]
    public void An_attempts_cost_rounds_to_the_micro_dollar_half_away_from_zero(double deviceSeconds, double dollarsPerHour, double expected)
    {
        Assert.Equal((decimal)expected, CostCalculator.Cost(deviceSeconds, (decimal)dollarsPerHour));
    }

    [Fact]
    public void A_million_tiny_attempts_sum_to_the_exact_micro_dollar()
    {
        // Each attempt costs $0.0000005 before rounding: half a micro-dollar. Rounded per attempt (half away from
        // zero) each bills $0.000001, so a million bill exactly $1. Truncating (or rounding half to even) bills $0;
        // summing unrounded doubles drifts off $0.5. The sum runs the way the farm's roll-ups add: whole micros.
        var perAttempt = CostCalculator.Cost(0.05, 0.036m);
        long totalMicros = 0;
        var asDouble = 0.0;
        for (var i = 0; i < 1_000_000; i++)
        {
            totalMicros += MoneyMath.ToMicros(CostCalculator.Cost(0.05, 0.036m));
            asDouble += 0.05 * 0.036 / 3600;
        }

        Assert.Equal(0.000001m, perAttempt);
        Assert.Equal(1.000000m, MoneyMath.FromMicros(totalMicros));
        Assert.NotEqual(0.5, asDouble);
        Assert.Equal(0.5, asDouble, 6);
    }

    [Fact]
    public void A_million_attempts_of_varied_cost_sum_exactly_where_doubles_drift()
    {
        long micros = 0;
        decimal dollars = 0;
        double drifting = 0;
        for (var i = 0; i < 1_000_000; i++)
        {
            var cost = CostCalculator.Cost(0.1 + (i % 7) * 0.3, 0.04m);
            micros += MoneyMath.ToMicros(cost);
            dollars += cost;
            drifting += (double)cost;
        }

        Assert.Equal(dollars, MoneyMath.FromMicros(micros));
        Assert.NotEqual((double)dollars, drifting);
    }

    [Fact]
    public void Micro_dollars_refuse_amounts_finer_than_the_ledger()
    {
        Assert.Equal(1_500_000, MoneyMath.ToMicros(1.5m));
        Assert.Throws<ArgumentException>(() => MoneyMath.ToMicros(0.0000001m));
        Assert.Equal(7, MoneyMath.Scale(0.0000001m));
    }

    [Fact]
    public void Co2e_is_energy_times_grid_intensity()
    {
        Assert.Equal(400.0, CostCalculator.Co2eGrams(3.6e6, 400), 9);
        Assert.Equal(0.04, CostCalculator.Co2eGrams(360, 400), 9);
    }

    private static readonly DateTime T0 = new(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc);

    private static PriceBook Book() => new(
        [
            new DevicePriceEntry("cpu", null, DateTime.UnixEpoch, 0.04m, 12),
            new DevicePriceEntry("cpu", null, T0, 0.05m, 12),
            new DevicePriceEntry("h100-80g", null, DateTime.UnixEpoch, 4.5m, 700),
            new DevicePriceEntry("h100-80g", "film", T0.AddHours(1), 3.9m, 700),
        ],
        [
            new CarbonIntensityEntry("*", null, DateTime.UnixEpoch, 400),
            new CarbonIntensityEntry("h100-80g", null, T0, 120),
            new CarbonIntensityEntry("*", "film", T0, 50),
            new CarbonIntensityEntry("cpu", "film", T0.AddHours(2), 10),
        ]);

    [Fact]
    public void A_price_applies_from_its_effective_time_and_an_override_from_its_own()
    {
        var book = Book();

        Assert.Equal(0.04m, book.PriceFor("cpu", "ads", T0.AddTicks(-1))!.DollarsPerHour);
        Assert.Equal(0.05m, book.PriceFor("cpu", "ads", T0)!.DollarsPerHour);
        Assert.Equal(0.05m, book.PriceFor("cpu", "film", T0)!.DollarsPerHour);
        Assert.Equal(4.5m, book.PriceFor("h100-80g", "film", T0)!.DollarsPerHour);
        Assert.Equal(3.9m, book.PriceFor("h100-80g", "film", T0.AddHours(1))!.DollarsPerHour);
        Assert.Equal(4.5m, book.PriceFor("h100-80g", "ads", T0.AddHours(1))!.DollarsPerHour);
        Assert.Null(book.PriceFor("tpu-v9", "film", T0));
        Assert.False(book.Knows("tpu-v9"));
        var unknown = Assert.Throws<KeyNotFoundException>(() => book.RatesFor("tpu-v9", "cpu", "film", T0));
        Assert.Contains("tpu-v9", unknown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Carbon_intensity_falls_back_from_the_projects_pool_to_the_farms_any_pool()
    {
        var book = Book();

        Assert.Equal(400, book.CarbonFor("cpu", "ads", T0)!.GramsPerKwh);
        Assert.Equal(120, book.CarbonFor("h100-80g", "ads", T0)!.GramsPerKwh);
        Assert.Equal(50, book.CarbonFor("h100-80g", "film", T0)!.GramsPerKwh);
        Assert.Equal(50, book.CarbonFor("cpu", "film", T0.AddHours(1))!.GramsPerKwh);
        Assert.Equal(10, book.CarbonFor("cpu", "film", T0.AddHours(2))!.GramsPerKwh);
        Assert.Equal(new BillingRates("cpu", 0.05m, 12, 10), book.RatesFor("cpu", "cpu", "film", T0.AddHours(3)));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(799_999, 0)]
    [InlineData(800_000, 1)]
    [InlineData(999_999, 1)]
    [InlineData(1_000_000, 2)]
    [InlineData(1_000_001, 2)]
    public void The_budget_state_is_ok_below_the_soft_threshold_soft_from_it_and_hard_at_the_limit(long spentMicros, int expected)
    {
        var soft = BudgetPolicy.SoftMicros(1_000_000, 0.8);

        Assert.Equal(800_000, soft);
        Assert.Equal((BudgetState)expected, BudgetPolicy.State(spentMicros, 1_000_000, soft));
    }

    [Fact]
    public void The_soft_threshold_rounds_up_to_the_micro_dollar_and_stays_within_the_limit()
    {
        Assert.Equal(2, BudgetPolicy.SoftMicros(3, 0.5));
        Assert.Equal(1, BudgetPolicy.SoftMicros(1, 0.000001));
        Assert.Equal(5, BudgetPolicy.SoftMicros(5, 1));
        Assert.Equal([BudgetState.Soft, BudgetState.Hard], BudgetPolicy.Crossed(BudgetState.Ok, BudgetState.Hard));
        Assert.Equal([BudgetState.Hard], BudgetPolicy.Crossed(BudgetState.Soft, BudgetState.Hard));
        Assert.Empty(BudgetPolicy.Crossed(BudgetState.Hard, BudgetState.Soft));
    }

    [Theory]
    [InlineData("-1", "must not be negative")]
    [InlineData("1000.01", "at most 1000")]
    [InlineData("0.0000001", "six decimals")]
    public void Absurd_prices_are_refused_with_the_field(string price, string message)
    {
        var errors = new List<FieldError>();
        MoneyRules.CheckDollars("dollarsPerHour", decimal.Parse(price, System.Globalization.CultureInfo.InvariantCulture), MoneyRules.MaxDollarsPerHour, zeroAllowed: true, errors);

        var error = Assert.Single(errors);
        Assert.Equal("dollarsPerHour", error.Field);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(-1)]
    [InlineData(20_000)]
    public void Absurd_numbers_are_refused_with_the_field(double watts)
    {
        var errors = new List<FieldError>();
        MoneyRules.CheckNumber("ratedWatts", watts, 0, MoneyRules.MaxRatedWatts, minAllowed: true, errors);

        Assert.Equal("ratedWatts", Assert.Single(errors).Field);
    }
}
