using ProgrammableFilm.Domain.Costs;
using ProgrammableFilm.Domain.Money;
using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Domain.Tests;

public class QuoteModelTests
{
    private static readonly DevicePrice Cpu = new("cpu", 0.04m, 12);

    private static ShotSpec Shot(string name = "s1", int frames = 1, int interval = 12, string engine = "procedural", int steps = 20) => new()
    {
        Name = name,
        Prompt = "a red car",
        DurationSeconds = frames,
        Fps = 1,
        Width = 64,
        Height = 64,
        Steps = steps,
        Guidance = 3,
        Seed = 1,
        Engine = engine,
        KeyframeInterval = interval,
    };

    /// <summary>Shots of one keyframe and an assembly each, newest first; the assembly's device time by the shot's age.</summary>
    private static List<TaskSample> History(QuoteKind kind, int shots, double keyframeSeconds, Func<int, double> assembleSeconds) =>
        [.. Enumerable.Range(0, shots).SelectMany(age =>
        {
            var shot = Guid.NewGuid();
            return new[] { new TaskSample(kind, TaskKind.Keyframe, shot, 1, keyframeSeconds), new TaskSample(kind, TaskKind.Assemble, shot, 1, assembleSeconds(age)) };
        })];

    private static List<TaskSample> History(QuoteKind kind, int shots, double keyframeSeconds, double assembleSeconds) =>
        History(kind, shots, keyframeSeconds, _ => assembleSeconds);

    [Fact]
    public void Work_counts_keyframe_and_segment_frames_and_one_assembly()
    {
        var work = Assert.Single(TakeWork.Of(Shot(frames: 25, interval: 12)));

        Assert.Equal(3, work.KeyframeFrames);
        Assert.Equal(22, work.SegmentFrames);
        Assert.Equal(11, work.LongestSegment);
        Assert.Equal("procedural 64x64", work.Kind.ToString());
        Assert.Equal("diffusion 64x64 30 steps", QuoteKind.Of(Shot(engine: "diffusion", steps: 30)).ToString());
    }

    [Fact]
    public void A_take_with_the_same_render_inputs_as_an_earlier_one_is_quoted_its_assembly_only()
    {
        // Procedural takes that differ only in guidance render the same frames: the planner renders them once.
        var shot = Shot(frames: 4) with { Variants = [new VariantSpec { Guidance = 5 }, new VariantSpec { Guidance = 7 }, new VariantSpec { Seed = 9 }] };

        var works = TakeWork.Of(shot);

        Assert.Equal([4, 0, 4], works.Select(w => w.KeyframeFrames + w.SegmentFrames));
    }

    [Fact]
    public void Before_any_history_the_quote_is_the_engines_prior_with_a_wide_range()
    {
        var quote = QuoteModel.Quote(TakeWork.Of(Shot()), [], Cpu, null);

        var take = Assert.Single(quote.Takes);
        Assert.Equal("prior", take.Basis);
        Assert.Equal(0, take.HistoryShots);
        Assert.True(quote.DeviceSeconds > 0);
        Assert.Equal(quote.DeviceSeconds * QuoteModel.PriorLow, quote.LowDeviceSeconds, 9);
        Assert.Equal(quote.DeviceSeconds * QuoteModel.PriorHigh, quote.HighDeviceSeconds, 9);
        Assert.Null(quote.WallSeconds);
    }

    [Fact]
    public void With_history_the_quote_is_the_rate_per_task_kind_times_the_work()
    {
        var kind = QuoteKind.Of(Shot());
        var history = History(kind, 20, keyframeSeconds: 0.5, assembleSeconds: 2);

        var quote = QuoteModel.Quote(TakeWork.Of(Shot(frames: 3, interval: 1)), history, Cpu, new FleetCapacity(4, 2));

        var take = Assert.Single(quote.Takes);
        Assert.Equal("history", take.Basis);
        Assert.Equal(20, take.HistoryShots);
        // Three keyframes at 0.5 s per frame, one assembly at 2 s.
        Assert.Equal((3 * 0.5) + 2, quote.DeviceSeconds, 6);
        Assert.True(quote.LowDeviceSeconds <= quote.DeviceSeconds && quote.DeviceSeconds <= quote.HighDeviceSeconds);
        Assert.Equal(CostCalculator.Cost(quote.DeviceSeconds, 0.04m), quote.Cost);
        Assert.Equal(quote.DeviceSeconds * 12 / 3.6e6, quote.EnergyKwh, 12);
        // Four devices in all, but the assembly waits for the keyframes: the critical path decides.
        Assert.Equal((0.5 + 2) / 2, quote.WallSeconds!.Value, 6);
    }

    [Fact]
    public void When_the_fleet_gets_faster_the_rate_follows_the_newest_shots()
    {
        // The 8 newest shots assembled in 0.3 s, the 12 before them in 0.6 s (a busier machine, a fresh worker): the
        // median of all 20 would quote the old 0.6 s.
        var kind = QuoteKind.Of(Shot());
        var history = History(kind, 20, keyframeSeconds: 0.01, assembleSeconds: age => age < 8 ? 0.3 : 0.6);

        var quote = QuoteModel.Quote(TakeWork.Of(Shot()), history, Cpu, null);

        Assert.Equal(0.01 + 0.3, quote.DeviceSeconds, 6);
        // The range still says the slower past can come back.
        Assert.Equal(0.01 + 0.6, quote.HighDeviceSeconds, 6);
    }

    [Fact]
    public void Stalled_tasks_are_set_aside_and_do_not_pull_the_rate_up()
    {
        // Six shots in 20 met a stall (1 s and more); the others assembled in 0.27, 0.30 and 0.33 s in turn. The plain
        // median leans towards the stalls (0.315 s); the rate is the typical task's, and only the range holds them.
        var kind = QuoteKind.Of(Shot());
        double[] typical = [0.27, 0.30, 0.33];
        var stalled = new HashSet<int> { 2, 5, 8, 11, 14, 17 };
        var history = History(kind, 20, keyframeSeconds: 0, assembleSeconds: age => stalled.Contains(age) ? 1 + (age / 60.0) : typical[(age - stalled.Count(s => s < age)) % 3]);

        var quote = QuoteModel.Quote(TakeWork.Of(Shot()), history, Cpu, null);

        Assert.Equal(0.30, quote.DeviceSeconds, 3);
        Assert.True(quote.HighDeviceSeconds > 1, $"high {quote.HighDeviceSeconds}");
    }

    [Fact]
    public void Weighted_quantiles_interpolate_between_the_middles_of_the_weights()
    {
        Assert.Equal(2.5, QuoteModel.WeightedQuantile([(1, 1), (2, 1), (3, 1), (4, 1)], 0.5), 12);
        Assert.Equal(3.25, QuoteModel.WeightedQuantile([(1, 3), (10, 1)], 0.5), 12);
        Assert.Equal(1, QuoteModel.WeightedQuantile([(1, 1), (2, 1)], 0.1), 12);
        Assert.Equal(2, QuoteModel.WeightedQuantile([(1, 1), (2, 1)], 0.9), 12);
        Assert.Equal(7, QuoteModel.WeightedQuantile([(7, 0.2)], 0.5), 12);
    }

    [Fact]
    public void A_task_kind_the_history_has_not_seen_is_priced_at_its_prior()
    {
        var kind = QuoteKind.Of(Shot());
        var quote = QuoteModel.Quote(TakeWork.Of(Shot(frames: 13, interval: 12)), History(kind, 5, 0.5, 2), Cpu, null);

        Assert.Equal("history+prior", Assert.Single(quote.Takes).Basis);
    }

    [Fact]
    public void Fewer_than_three_shots_of_history_leave_the_prior_in_charge()
    {
        var kind = QuoteKind.Of(Shot());
        var quote = QuoteModel.Quote(TakeWork.Of(Shot()), History(kind, QuoteModel.MinHistoryShots - 1, 0.5, 2), Cpu, null);

        Assert.Equal("prior", Assert.Single(quote.Takes).Basis);
    }

    [Fact]
    public void Another_kinds_history_does_not_price_this_kind()
    {
        var other = QuoteKind.Of(Shot() with { Width = 128 });
        var quote = QuoteModel.Quote(TakeWork.Of(Shot()), History(other, 20, 5, 20), Cpu, null);

        Assert.Equal("prior", Assert.Single(quote.Takes).Basis);
    }

    [Fact]
    public void Error_is_signed_relative_to_the_quote_and_accuracy_is_its_median_absolute_value()
    {
        Assert.Equal(0.1, QuoteModel.ErrorFraction(1.00m, 1.10m)!.Value, 12);
        Assert.Equal(-0.25, QuoteModel.ErrorFraction(2m, 1.5m)!.Value, 12);
        Assert.Null(QuoteModel.ErrorFraction(0m, 1m));
        Assert.Equal(0.2, QuoteModel.MedianAbsolute([-0.3, 0.1, 0.2])!.Value, 12);
        Assert.Null(QuoteModel.MedianAbsolute([]));
        Assert.Equal(2.5, QuoteModel.Quantile([1, 2, 3, 4], 0.5), 12);
    }
}
