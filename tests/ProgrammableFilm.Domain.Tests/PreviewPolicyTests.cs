using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Domain.Tests;

public class PreviewPolicyTests
{
    private const string Spec = """
        project: ci
        lane: batch
        shots:
          - {name: wide, prompt: a red car, duration: 3, fps: 24, width: 640, height: 360, steps: 20, keyframeInterval: 12}
          - {name: tiny, prompt: a blue ball, duration: 0.1, fps: 10, width: 64, height: 72, steps: 2}
        """;

    [Fact]
    public void Preview_true_renders_half_size_a_quarter_of_the_steps_and_every_fourth_frame_in_the_preview_lane()
    {
        var spec = JobSpecReader.ReadYaml(Spec.Replace("lane: batch", "lane: batch\npreview: true", StringComparison.Ordinal)).Spec!;

        Assert.True(spec.Preview);
        Assert.Equal(Lane.Preview, spec.Lane);
        var wide = spec.Shots[0];
        Assert.Equal((320, 176, 5, 6, 18, 3), (wide.Width, wide.Height, wide.Steps, wide.Fps, wide.FrameCount, wide.KeyframeInterval));
        Assert.Equal(3.0, wide.DurationSeconds);
        var full = JobSpecReader.ReadYaml(Spec).Spec!;
        Assert.False(full.Preview);
        Assert.Equal(4, Rendered(full.Shots[0]) / Rendered(wide));
    }

    private static int Rendered(ShotSpec shot) => ShotPlanner.Plan(shot).Where(t => t.Kind != TaskKind.Assemble).Sum(t => t.Frames.Count);

    [Fact]
    public void A_preview_never_goes_below_the_spec_minimums_nor_loses_its_only_frame()
    {
        var tiny = PreviewPolicy.Apply(JobSpecReader.ReadYaml(Spec).Spec!).Shots[1];

        Assert.Equal((64, 64, 2, 10, 1), (tiny.Width, tiny.Height, tiny.Steps, tiny.Fps, tiny.FrameCount));
    }

    [Theory]
    [InlineData(64, 64)]
    [InlineData(72, 64)]
    [InlineData(136, 64)]
    [InlineData(144, 72)]
    [InlineData(4096, 2048)]
    public void Half_a_side_is_a_multiple_of_8_and_at_least_64(int side, int half)
    {
        Assert.Equal(half, PreviewPolicy.Half(side));
    }

    [Theory]
    [InlineData("yes")]
    [InlineData("1")]
    public void Preview_must_be_true_or_false(string value)
    {
        var error = Assert.Single(JobSpecReader.ReadYaml(Spec.Replace("lane: batch", $"lane: batch\npreview: {value}", StringComparison.Ordinal)).Errors);

        Assert.Equal("preview", error.Field);
    }
}
