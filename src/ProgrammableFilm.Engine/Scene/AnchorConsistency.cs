using ProgrammableFilm.Engine.Imaging;
using ProgrammableFilm.Engine.Procedural;

namespace ProgrammableFilm.Engine.Scene;

/// <summary>
/// How far a shot drifts from its sequence's anchors, in 0..255 colour units (root mean square over channels,
/// averaged over the checked frames): <see cref="Palette"/>, between the sky and ground colours of the frames and
/// those of the anchored background; <see cref="ObjectColour"/>, between the mean colour inside the object's planned
/// box and the anchored colour. Null where the shot has no such anchor (or it names nothing the vocabulary knows).
/// </summary>
public sealed record AnchorDrift(double? Palette, double? ObjectColour);

/// <summary>The consistency check of a sequence's anchors, measured on a shot's rendered frames.</summary>
public static class AnchorConsistency
{
    public static AnchorDrift Measure(string? background, string? colour, string prompt, long seed, int totalFrames, IReadOnlyList<(int Index, RgbImage Image)> frames)
    {
        ArgumentNullException.ThrowIfNull(frames);
        var vocabulary = SceneVocabulary.Default;
        var anchoredBackground = background is null ? null : PromptParser.Parse($"in the {background}", vocabulary).Background;
        var anchoredColour = colour is null ? null : PromptParser.Parse(colour, vocabulary).Colour;
        var chosen = PromptAdherence.Spread(frames);
        if (chosen.Count == 0)
        {
            return new AnchorDrift(null, null);
        }

        double? palette = anchoredBackground is null ? null
            : chosen.Average(f => Rms(PromptAdherence.Signature(f.Image), PromptAdherence.BackgroundReferences.Value[anchoredBackground]));
        if (anchoredColour is null)
        {
            return new AnchorDrift(palette, null);
        }

        var scene = SceneDescription.FromPrompt(prompt, seed, vocabulary);
        var target = vocabulary.ColourOf(anchoredColour);
        var drifts = chosen.Select(f =>
        {
            var position = totalFrames <= 1 ? 0 : (double)f.Index / (totalFrames - 1);
            var mean = MeanInBox(f.Image, ObjectLayout.RenderBox(scene, position, f.Image.Width, f.Image.Height));
            return mean is { } m ? Rms([m.R, m.G, m.B], [target.R, target.G, target.B]) : (double?)null;
        }).OfType<double>().ToList();
        return new AnchorDrift(palette, drifts.Count == 0 ? null : drifts.Average());
    }

    private static double Rms(double[] a, double[] b) => Math.Sqrt(a.Zip(b, (x, y) => (x - y) * (x - y)).Average());

    /// <summary>The mean colour of the pixels the box covers at least half; null for an empty box.</summary>
    private static (double R, double G, double B)? MeanInBox(RgbImage image, byte[] box)
    {
        double r = 0, g = 0, b = 0;
        var count = 0;
        for (var p = 0; p < box.Length; p++)
        {
            if (box[p] >= 128)
            {
                r += image.Pixels[p * 3];
                g += image.Pixels[(p * 3) + 1];
                b += image.Pixels[(p * 3) + 2];
                count++;
            }
        }

        return count == 0 ? null : (r / count, g / count, b / count);
    }
}
