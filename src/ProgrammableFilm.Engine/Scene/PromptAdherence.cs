using ProgrammableFilm.Engine.Imaging;
using ProgrammableFilm.Engine.Procedural;

namespace ProgrammableFilm.Engine.Scene;

/// <summary>
/// Shares of the checked frames in which the scene parser's reading of the prompt is found: the prompted colour is
/// the most common vocabulary colour inside the planned box (<see cref="Colour"/>), pixels of that colour are centred
/// on the box (<see cref="Object"/>), and the sky and ground look most like the prompted background
/// (<see cref="Background"/>). Each is 0..1; <see cref="Overall"/> is their mean.
/// </summary>
public sealed record AdherenceScore(double Object, double Colour, double Background, int FramesChecked)
{
    public double Overall => (Object + Colour + Background) / 3;
}

/// <summary>
/// The engine tests' judgements of a render (colour dominates the object, the object follows the planned motion,
/// the background matches) as a metric of any rendered shot, so takes can be ranked by how well they follow their
/// prompt. Pixels are judged as a person would look at them; no model is consulted.
/// </summary>
public static class PromptAdherence
{
    private const int ColourTolerance = 70;

    /// <summary>Frames checked at most (spread over the given ones): the keyframes are enough to rank takes.</summary>
    public const int MaxFrames = 12;

    /// <summary>Each background's <see cref="Signature"/> as the procedural renderer draws it.</summary>
    internal static readonly Lazy<Dictionary<string, double[]>> BackgroundReferences = new(() =>
        SceneVocabulary.Default.Backgrounds.ToDictionary(
            b => b,
            b => Signature(ProceduralRenderer.RenderFrame(SceneDescription.FromPrompt($"a red ball in the {b.Replace('-', ' ')}", 5, SceneVocabulary.Default), 0.5, 64, 64)),
            StringComparer.Ordinal));

    /// <param name="frames">Rendered frames with their index in the shot.</param>
    public static AdherenceScore Measure(string prompt, long seed, int totalFrames, IReadOnlyList<(int Index, RgbImage Image)> frames)
    {
        ArgumentNullException.ThrowIfNull(frames);
        var vocabulary = SceneVocabulary.Default;
        var scene = SceneDescription.FromPrompt(prompt, seed, vocabulary);
        var chosen = Spread(frames);
        int objectHits = 0, colourHits = 0, backgroundHits = 0;
        foreach (var (index, image) in chosen)
        {
            var position = totalFrames <= 1 ? 0 : (double)index / (totalFrames - 1);
            var box = ObjectLayout.RenderBox(scene, position, image.Width, image.Height);
            if (MostCommonColourInBox(image, box, vocabulary) == scene.Colour)
            {
                colourHits++;
            }

            var found = ImageStats.CentroidNear(image, scene.ObjectColour, ColourTolerance);
            var (cx, cy) = Centre(box, image.Width);
            if (found.Count > 0 && Math.Abs(found.X - cx) <= image.Width / 8.0 && Math.Abs(found.Y - cy) <= image.Height / 8.0)
            {
                objectHits++;
            }

            var signature = Signature(image);
            var nearest = BackgroundReferences.Value.MinBy(r => r.Value.Zip(signature, (x, y) => (x - y) * (x - y)).Sum()).Key;
            if (nearest == scene.Background)
            {
                backgroundHits++;
            }
        }

        double Share(int hits) => chosen.Count == 0 ? 0 : (double)hits / chosen.Count;
        return new AdherenceScore(Share(objectHits), Share(colourHits), Share(backgroundHits), chosen.Count);
    }

    /// <summary>At most <see cref="MaxFrames"/> of the frames, spread evenly from the first to the last.</summary>
    internal static IReadOnlyList<(int Index, RgbImage Image)> Spread(IReadOnlyList<(int Index, RgbImage Image)> frames) =>
        frames.Count <= MaxFrames ? frames : [.. Enumerable.Range(0, MaxFrames).Select(i => frames[i * (frames.Count - 1) / (MaxFrames - 1)])];

    private static string? MostCommonColourInBox(RgbImage image, byte[] box, SceneVocabulary vocabulary)
    {
        var colours = vocabulary.Colours.Select(c => (Name: c, Rgb: vocabulary.ColourOf(c))).ToList();
        var counts = new int[colours.Count];
        for (var p = 0; p < box.Length; p++)
        {
            if (box[p] < 128)
            {
                continue;
            }

            var pixel = new Rgb(image.Pixels[p * 3], image.Pixels[(p * 3) + 1], image.Pixels[(p * 3) + 2]);
            var best = -1;
            var bestDistance = ColourTolerance + 1;
            for (var c = 0; c < colours.Count; c++)
            {
                var distance = pixel.DistanceTo(colours[c].Rgb);
                if (distance < bestDistance)
                {
                    (best, bestDistance) = (c, distance);
                }
            }

            if (best >= 0)
            {
                counts[best]++;
            }
        }

        var max = counts.Length == 0 ? 0 : counts.Max();
        return max == 0 ? null : colours[Array.IndexOf(counts, max)].Name;
    }

    private static (double X, double Y) Centre(byte[] box, int width)
    {
        double sum = 0, x = 0, y = 0;
        for (var p = 0; p < box.Length; p++)
        {
            sum += box[p];
            x += box[p] * (p % width);
            y += box[p] * (p / width);
        }

        return sum == 0 ? (double.NaN, double.NaN) : (x / sum, y / sum);
    }

    /// <summary>Mean colours of the top third (sky) and bottom third (ground): what tells the backgrounds apart.</summary>
    internal static double[] Signature(RgbImage image)
    {
        var third = image.Height / 3;
        var (sr, sg, sb) = ImageStats.MeanColour(image, 0, 0, image.Width, third);
        var (gr, gg, gb) = ImageStats.MeanColour(image, 0, image.Height - third, image.Width, third);
        return [sr, sg, sb, gr, gg, gb];
    }
}
