using ProgrammableFilm.Engine.Imaging;
using ProgrammableFilm.Engine.Procedural;
using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Tests.Imaging;

public sealed class FlickerMetricTests
{
    [Fact]
    public void Fewer_than_three_frames_score_zero()
    {
        Assert.Equal(0, FlickerMetric.Compute([Solid(10), Solid(200)]));
    }

    [Fact]
    public void Linear_fade_scores_zero()
    {
        Assert.Equal(0, FlickerMetric.Compute([.. Enumerable.Range(0, 10).Select(i => Solid((byte)(20 * i)))]));
    }

    [Fact]
    public void Smooth_motion_scores_near_zero()
    {
        // A soft blob sliding one pixel per frame: large frame-to-frame change, almost none of it flicker.
        var frames = Enumerable.Range(0, 12).Select(i => Blob(20 + i, 32)).ToArray();

        Assert.InRange(FlickerMetric.Compute(frames), 0, 0.1);
    }

    [Fact]
    public void Procedural_motion_scores_far_below_noise()
    {
        // Hard edges moving more than a pixel per frame are steps in time at each pixel they cross, so they score a
        // little; still an order of magnitude below real flicker.
        var scene = SceneDescription.FromPrompt("a red car racing across the snow", 2, SceneVocabulary.Default);
        var frames = Enumerable.Range(0, 24).Select(i => ProceduralRenderer.RenderFrame(scene, i / 23.0, 64, 64)).ToArray();
        var noise = new[] { Noise(1), Noise(2), Noise(1), Noise(2) };

        Assert.True(FlickerMetric.Compute(frames) * 10 < FlickerMetric.Compute(noise));
    }

    [Fact]
    public void Alternating_noise_scores_high()
    {
        var a = Noise(1);
        var b = Noise(2);

        Assert.True(FlickerMetric.Compute([a, b, a, b, a, b]) > 40);
    }

    [Fact]
    public void Alternating_brightness_scores_the_amplitude()
    {
        // |100 - (50 + 50) / 2| = 50 and |50 - (100 + 100) / 2| = 50 for every pixel.
        Assert.Equal(50, FlickerMetric.Compute([Solid(50), Solid(100), Solid(50), Solid(100)]));
    }

    private static RgbImage Solid(byte value)
    {
        var image = new RgbImage(16, 16);
        Array.Fill(image.Pixels, value);
        return image;
    }

    private static RgbImage Blob(double centreX, double centreY)
    {
        var image = new RgbImage(64, 64);
        for (var y = 0; y < 64; y++)
        {
            for (var x = 0; x < 64; x++)
            {
                var d2 = ((x - centreX) * (x - centreX)) + ((y - centreY) * (y - centreY));
                var value = (byte)(255 * Math.Exp(-d2 / (2 * 8.0 * 8.0)));
                image.Pixels[((y * 64) + x) * 3] = value;
            }
        }

        return image;
    }

    private static RgbImage Noise(ulong seed)
    {
        var random = new SplitMix64(seed);
        var image = new RgbImage(64, 64);
        for (var i = 0; i < image.Pixels.Length; i++)
        {
            image.Pixels[i] = (byte)random.NextUInt64();
        }

        return image;
    }
}
