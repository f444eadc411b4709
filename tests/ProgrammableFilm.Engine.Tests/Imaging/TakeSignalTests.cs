using ProgrammableFilm.Engine.Imaging;
using ProgrammableFilm.Engine.Procedural;
using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Tests.Imaging;

/// <summary>The per-take feedback signals: seam error and prompt adherence.</summary>
public sealed class TakeSignalTests
{
    private static RgbImage Flat(byte value) => new(8, 8, Enumerable.Repeat(value, 8 * 8 * 3).ToArray());

    [Fact]
    public void A_jump_at_a_keyframe_is_a_seam_error_and_the_same_jump_elsewhere_is_not()
    {
        // A steady ramp with one frame (5) out of line.
        var frames = Enumerable.Range(0, 10).Select(i => Flat((byte)((i * 10) + (i == 5 ? 40 : 0)))).ToList();

        Assert.Equal(40, SeamMetric.Compute(frames, [0, 5, 9]), 6);
        Assert.Equal(0, SeamMetric.Compute(frames, [0, 2, 8, 9]), 6);
        Assert.Equal(0, SeamMetric.Compute(frames, [0, 9]));
    }

    [Fact]
    public void Procedural_frames_of_a_prompt_adhere_to_it_and_not_to_another_prompt()
    {
        const string prompt = "a blue car racing left to right in the snow";
        var scene = SceneDescription.FromPrompt(prompt, 3, SceneVocabulary.Default);
        var frames = new[] { 0, 4, 8 }.Select(i => (i, ProceduralRenderer.RenderFrame(scene, i / 8.0, 96, 64))).ToList();

        var own = PromptAdherence.Measure(prompt, 3, 9, frames);
        var other = PromptAdherence.Measure("a yellow ball rising in the forest", 3, 9, frames);

        Assert.Equal((1.0, 1.0, 1.0), (own.Object, own.Colour, own.Background));
        Assert.True(other.Overall < 0.5, $"a forest prompt scored {other} on snow frames");
    }
}
