using ProgrammableFilm.Domain.Costs;

namespace ProgrammableFilm.Domain.Tests;

public class CostCalculatorTests
{
    [Fact]
    public void Cost_is_device_seconds_times_the_hourly_price()
    {
        Assert.Equal(4.5m, CostCalculator.Cost(3600, 4.5m));
        Assert.Equal(0.000022m, CostCalculator.Cost(2, 0.04m));
        Assert.Equal(0.011111m, CostCalculator.Cost(1000, 0.04m));
    }

    [Fact]
    public void Many_small_charges_sum_without_drift()
    {
        var total = Enumerable.Repeat(CostCalculator.Cost(36, 1m), 100).Sum();

        Assert.Equal(1m, total);
    }

    [Fact]
    public void Negative_device_time_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => CostCalculator.Cost(-1, 1m));
    }

    [Fact]
    public void Unknown_skus_are_an_error_not_free()
    {
        var table = PriceTable.Default;

        Assert.Equal(0.04m, table.For("cpu").DollarsPerHour);
        var error = Assert.Throws<KeyNotFoundException>(() => table.For("tpu-v9"));
        Assert.Contains("tpu-v9", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Estimated_energy_is_rated_power_times_time()
    {
        Assert.Equal(120.0, CostCalculator.EstimatedJoules(10, 12));
    }
}
