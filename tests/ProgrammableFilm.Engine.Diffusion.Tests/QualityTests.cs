using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Imaging;
using ProgrammableFilm.Engine.Scene;
using Xunit.Abstractions;

namespace ProgrammableFilm.Engine.Diffusion.Tests;

/// <summary>
/// What the trained model (models/pf-scene-v2.safetensors) must get right, judged on pixels a person would look at.
/// </summary>
public sealed class QualityTests(ModelFixture fixture, ITestOutputHelper output) : IClassFixture<ModelFixture>
{
    private const int Steps = 20;

    // Measured 2026-11-22. pf-scene-v1 (2700 steps): the colour test passed for 3 of 4 prompts, motion for none.
    // pf-scene-v2 (8500 steps, position table, slot dropout, object-weighted loss; eval loss 0.050): the colour test
    // passes for all four prompts (enforced below), but the object's position does not depend on the shot position s
    // at all (the t = 999 prediction for "left to right" is the same red band at s = 0 and s = 1), so no motion passes
    // (PyTorch, 4500-step checkpoint: 1 of 3 seeds at best). The engine matches PyTorch (ParityTests): this is the
    // model, not the sampler. Next: scale-shift conditioning and smooth s features (drafted in commit c536112, untrained).
    private const string UndertrainedModel = "pf-scene-v2 draws backgrounds and objects in the prompted colour but does not yet place the object by shot position, so motion fails; see the comment above.";

    private async Task<IReadOnlyList<RgbImage>> Keyframes(string prompt, int totalFrames, int[] frames, long seed = 11)
    {
        using var engine = new DiffusionEngine(fixture.Get(2));
        var result = await engine.RenderAsync(
            new RenderRequest
            {
                Prompt = prompt, Width = 64, Height = 64, Steps = Steps, Guidance = 3.0, Seed = seed,
                TotalFrames = totalFrames, FrameIndices = frames,
            },
            null,
            CancellationToken.None);
        return [.. result.Frames.Select(f => f.Image)];
    }

    private static int Near(RgbImage image, string colour, int tolerance = 70) =>
        ImageStats.CentroidNear(image, SceneVocabulary.Default.ColourOf(colour), tolerance).Count;

    [Theory]
    [InlineData("car", "desert", "red", "blue")]
    [InlineData("ball", "snow", "blue", "red")]
    [InlineData("boat", "ocean", "yellow", "red")]
    [InlineData("bird", "forest", "purple", "orange")]
    public async Task Prompted_colour_dominates_the_object(string obj, string background, string colour, string other)
    {
        int hits = 0, misses = 0;
        foreach (long seed in new long[] { 1, 2, 3 })
        {
            var a = (await Keyframes($"a {colour} {obj} in the {background}", 1, [0], seed))[0];
            var b = (await Keyframes($"a {other} {obj} in the {background}", 1, [0], seed))[0];
            int aColour = Near(a, colour), bColour = Near(b, colour), aOther = Near(a, other), bOther = Near(b, other);
            output.WriteLine($"seed {seed}: '{colour}' prompt has {aColour} {colour} px / {aOther} {other} px; '{other}' prompt has {bColour} {colour} px / {bOther} {other} px");
            if (aColour > bColour && bOther > aOther && aColour > aOther)
            {
                hits++;
            }
            else
            {
                misses++;
            }
        }

        Assert.True(hits >= 2, $"{colour} {obj}: the prompted colour dominated in {hits} of 3 seeds");
    }

    /// <summary>
    /// Classifies each generated frame by its sky (top third) and ground (bottom third) colours against the procedural
    /// renderer's version of every background: the prompted background must be the nearest.
    /// </summary>
    [Fact]
    public async Task Background_matches_the_prompt()
    {
        static double[] Signature(RgbImage image)
        {
            var third = image.Height / 3;
            var (sr, sg, sb) = ImageStats.MeanColour(image, 0, 0, image.Width, third);
            var (gr, gg, gb) = ImageStats.MeanColour(image, 0, image.Height - third, image.Width, third);
            return [sr, sg, sb, gr, gg, gb];
        }

        var backgrounds = SceneVocabulary.Default.Backgrounds;
        var references = backgrounds.ToDictionary(
            b => b,
            b => Signature(Procedural.ProceduralRenderer.RenderFrame(SceneDescription.FromPrompt($"a red ball in the {b.Replace('-', ' ')}", 5, SceneVocabulary.Default), 0.5, 64, 64)));
        var wrong = new List<string>();
        foreach (long seed in new long[] { 1, 2 })
        {
            foreach (var background in backgrounds)
            {
                var frame = (await Keyframes($"a red ball in the {background.Replace('-', ' ')}", 1, [0], seed))[0];
                var signature = Signature(frame);
                var nearest = references.MinBy(r => r.Value.Zip(signature, (x, y) => (x - y) * (x - y)).Sum()).Key;
                output.WriteLine($"seed {seed}: {background} looks like {nearest}");
                if (nearest != background)
                {
                    wrong.Add($"{background} (seed {seed}) looks like {nearest}");
                }
            }
        }

        Assert.True(wrong.Count == 0, string.Join("; ", wrong));
    }

    /// <summary>
    /// Keyframes at the start, middle and end of a nine-frame shot: the red object's centroid must travel at least
    /// 8 pixels (an eighth of the frame) the prompted way, or, approaching, its area must grow by half.
    /// </summary>
    [Theory(Skip = UndertrainedModel)]
    [InlineData("a red car racing left to right in the desert", "x", 1)]
    [InlineData("a red car racing right to left in the desert", "x", -1)]
    [InlineData("a red ball rising in the forest", "y", -1)]
    [InlineData("a red ball falling in the forest", "y", 1)]
    [InlineData("a red ball approaching in the desert", "area", 1)]
    public async Task Object_moves_as_the_prompt_says_across_a_shot(string prompt, string measure, int sign)
    {
        var red = SceneVocabulary.Default.ColourOf("red");
        int agree = 0;
        foreach (long seed in new long[] { 1, 2, 3 })
        {
            var frames = await Keyframes(prompt, 9, [0, 4, 8], seed);
            var centroids = frames.Select(f => ImageStats.CentroidNear(f, red, 70)).ToArray();
            double[] values = measure switch
            {
                "x" => [.. centroids.Select(c => c.X)],
                "y" => [.. centroids.Select(c => c.Y)],
                _ => [.. centroids.Select(c => (double)c.Count)],
            };
            output.WriteLine($"seed {seed}: red {measure} = {string.Join(", ", values.Select(v => v.ToString("F1", System.Globalization.CultureInfo.InvariantCulture)))}");
            bool moved = measure == "area"
                ? values[0] > 0 && values[2] > 1.5 * values[0]
                : !values.Any(double.IsNaN) && sign * (values[2] - values[0]) > 8;
            if (moved)
            {
                agree++;
            }
        }

        Assert.True(agree >= 2, $"'{prompt}': the object moved as prompted in {agree} of 3 seeds");
    }

    [Fact]
    public async Task Segment_with_correlated_noise_and_keyframes_flickers_less_than_independent_keyframes()
    {
        const string prompt = "a yellow ball rolling left to right in the forest";
        const int total = 9;
        using var engine = new DiffusionEngine(fixture.Get(2));
        var request = new RenderRequest
        {
            Prompt = prompt, Width = 64, Height = 64, Steps = Steps, Guidance = 3.0, Seed = 5, TotalFrames = total,
            FrameIndices = [.. Enumerable.Range(0, total)],
        };
        var independent = (await engine.RenderAsync(request, null, CancellationToken.None)).Frames.Select(f => f.Image).ToList();
        var segment = await engine.RenderAsync(
            request with
            {
                FrameIndices = [.. Enumerable.Range(1, total - 2)],
                StartKeyframe = new ConditioningFrame(0, independent[0]),
                EndKeyframe = new ConditioningFrame(total - 1, independent[^1]),
            },
            null,
            CancellationToken.None);
        var coherent = new List<RgbImage> { independent[0] };
        coherent.AddRange(segment.Frames.Select(f => f.Image));
        coherent.Add(independent[^1]);

        double flickerIndependent = FlickerMetric.Compute(independent);
        double flickerSegment = FlickerMetric.Compute(coherent);
        output.WriteLine($"flicker: independent keyframes {flickerIndependent:F2}, segment (rho 0.9 + keyframe conditioning) {flickerSegment:F2}");
        Assert.True(flickerSegment < 0.7 * flickerIndependent, $"segment flicker {flickerSegment:F2} vs independent {flickerIndependent:F2}");
    }
}
