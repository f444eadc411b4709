using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Imaging;
using ProgrammableFilm.Engine.Scene;
using Xunit.Abstractions;

namespace ProgrammableFilm.Engine.Diffusion.Tests;

/// <summary>The quality tests on the native engine.</summary>
public sealed class QualityTests(ModelFixture fixture, ITestOutputHelper output) : QualityTestsBase(output), IClassFixture<ModelFixture>
{
    protected override IRenderEngine CreateEngine() => new DiffusionEngine(fixture.Get(2));
}

/// <summary>
/// What the trained model (models/pf-scene-v3.safetensors) must get right, judged on pixels a person would look at; run
/// against every implementation of the <c>diffusion</c> engine (native here, TorchSharp in its own test project).
/// </summary>
public abstract class QualityTestsBase(ITestOutputHelper output)
{
    private const int Steps = 20;

    /// <summary>An engine on a shared, already loaded model (disposing it must not unload the model).</summary>
    protected abstract IRenderEngine CreateEngine();

    private async Task<IReadOnlyList<RgbImage>> Keyframes(string prompt, int totalFrames, int[] frames, long seed = 11)
    {
        var engine = CreateEngine();
        using var owner = engine as IDisposable;
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
    /// Keyframes at the start, middle and end of a nine-frame shot follow the shot's plan (the object's box from the
    /// prompt's motion and the seed, as the procedural engine would draw it): the red object's centroid travels at
    /// least half the planned distance the planned way and is within 8 pixels of the box's centre on that axis in
    /// every frame; approaching, its area at least doubles.
    /// </summary>
    [Theory]
    [InlineData("a red car racing left to right in the desert", "x")]
    [InlineData("a red car racing right to left in the desert", "x")]
    [InlineData("a red ball rising in the forest", "y")]
    [InlineData("a red ball falling in the forest", "y")]
    [InlineData("a red ball approaching in the desert", "area")]
    public async Task Object_moves_as_the_prompt_says_across_a_shot(string prompt, string measure)
    {
        var red = SceneVocabulary.Default.ColourOf("red");
        double[] positions = [0, 0.5, 1];
        int agree = 0;
        foreach (long seed in new long[] { 1, 2, 3 })
        {
            var frames = await Keyframes(prompt, 9, [0, 4, 8], seed);
            var scene = SceneDescription.FromPrompt(prompt, seed, SceneVocabulary.Default);
            var found = frames.Select(f => ImageStats.CentroidNear(f, red, 70)).ToArray();
            var planned = positions.Select(s => BoxCentre(Procedural.ObjectLayout.RenderBox(scene, s, 64, 64))).ToArray();
            double[] got = measure switch
            {
                "x" => [.. found.Select(c => c.X)],
                "y" => [.. found.Select(c => c.Y)],
                _ => [.. found.Select(c => (double)c.Count)],
            };
            double[] plan = measure == "x" ? [.. planned.Select(c => c.X)] : [.. planned.Select(c => c.Y)];
            string F(IEnumerable<double> values) => string.Join(", ", values.Select(v => v.ToString("F1", System.Globalization.CultureInfo.InvariantCulture)));
            output.WriteLine($"seed {seed}: red {measure} = {F(got)}" + (measure == "area" ? "" : $"; planned {F(plan)}"));
            bool moved = measure == "area"
                ? got[0] > 0 && got[2] > 2 * got[0]
                : !got.Any(double.IsNaN)
                  && (got[2] - got[0]) / (plan[2] - plan[0]) >= 0.5
                  && got.Zip(plan, (g, p) => Math.Abs(g - p)).All(d => d <= 8);
            if (moved)
            {
                agree++;
            }
        }

        Assert.True(agree >= 2, $"'{prompt}': the object followed the planned motion in {agree} of 3 seeds");
    }

    private static (double X, double Y) BoxCentre(byte[] box)
    {
        double sum = 0, x = 0, y = 0;
        for (int p = 0; p < box.Length; p++)
        {
            sum += box[p];
            x += box[p] * (p % 64);
            y += box[p] * (p / 64);
        }

        return (x / sum, y / sum);
    }

    [Fact]
    public async Task Segment_with_correlated_noise_and_keyframes_flickers_less_than_independent_keyframes()
    {
        const string prompt = "a yellow ball rolling left to right in the forest";
        const int total = 9;
        var engine = CreateEngine();
        using var owner = engine as IDisposable;
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
