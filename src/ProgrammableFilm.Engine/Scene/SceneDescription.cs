using System.Globalization;
using ProgrammableFilm.Engine.Imaging;

namespace ProgrammableFilm.Engine.Scene;

/// <summary>
/// Where the seed puts things, in units of the frame so that every resolution shows the same picture.
/// </summary>
/// <param name="ObjectX">Horizontal centre of the object, as a fraction of the frame width, for motions that do not move it sideways.</param>
/// <param name="ObjectY">Vertical centre of the object, as a fraction of the frame height (0 = top), for motions that do not move it vertically.</param>
/// <param name="ObjectSize">Object height as a fraction of the frame height (before the approaching scale).</param>
/// <param name="Travel">Fraction of the full path the object covers during the shot: the small speed variation between clips.</param>
/// <param name="Horizon">Height of the horizon as a fraction of the frame height.</param>
/// <param name="DetailSeed">Seed of the background details (building heights, lit windows, tree positions).</param>
public sealed record SceneLayout(double ObjectX, double ObjectY, double ObjectSize, double Travel, double Horizon, ulong DetailSeed);

/// <summary>
/// A fully specified scene: the prompt's choices with defaults for the slots it left open, and a layout drawn from the seed.
/// The model receives the prompt's own indices (0 for an open slot); only the procedural engine needs the defaults.
/// </summary>
public sealed record SceneDescription
{
    /// <summary>Background when the prompt names none: plain daylight reads best in previz.</summary>
    public const string DefaultBackground = "desert";

    /// <summary>Object when the prompt names none: the simplest shape, it implies no direction.</summary>
    public const string DefaultObject = "ball";

    /// <summary>Colour when the prompt names none: stands out on every background.</summary>
    public const string DefaultColour = "red";

    /// <summary>Motion when the prompt names none: nothing moves unless asked to.</summary>
    public const string DefaultMotion = "static";

    /// <summary>The parsed prompt this scene came from.</summary>
    public required ParsedPrompt Prompt { get; init; }

    /// <summary>Canonical background name.</summary>
    public required string Background { get; init; }

    /// <summary>Canonical object name.</summary>
    public required string Object { get; init; }

    /// <summary>Canonical colour name.</summary>
    public required string Colour { get; init; }

    /// <summary>The RGB value of <see cref="Colour"/>.</summary>
    public required Rgb ObjectColour { get; init; }

    /// <summary>Canonical motion name.</summary>
    public required string Motion { get; init; }

    /// <summary>The seed the layout was drawn from.</summary>
    public required long Seed { get; init; }

    /// <summary>Positions and sizes drawn from <see cref="Seed"/>.</summary>
    public required SceneLayout Layout { get; init; }

    /// <summary>Parses <paramref name="prompt"/> and builds its scene for <paramref name="seed"/>.</summary>
    public static SceneDescription FromPrompt(string prompt, long seed, SceneVocabulary vocabulary) =>
        Create(PromptParser.Parse(prompt, vocabulary), seed, vocabulary);

    /// <summary>Fills the open slots of <paramref name="prompt"/> with the defaults and draws the layout from <paramref name="seed"/>.</summary>
    public static SceneDescription Create(ParsedPrompt prompt, long seed, SceneVocabulary vocabulary)
    {
        var colour = prompt.Colour ?? DefaultColour;
        var obj = prompt.Object ?? DefaultObject;
        return new SceneDescription
        {
            Prompt = prompt,
            Background = prompt.Background ?? DefaultBackground,
            Object = obj,
            Colour = colour,
            ObjectColour = vocabulary.ColourOf(colour),
            Motion = prompt.Motion ?? DefaultMotion,
            Seed = seed,
            Layout = DrawLayout(obj, seed),
        };
    }

    /// <summary>A scene with every slot named, as the dataset generator enumerates them.</summary>
    public static SceneDescription Create(string background, string obj, string colour, string motion, long seed, SceneVocabulary vocabulary)
    {
        foreach (var (slot, name) in new[] { (SceneSlot.Background, background), (SceneSlot.Object, obj), (SceneSlot.Colour, colour), (SceneSlot.Motion, motion) })
        {
            vocabulary.IndexOf(slot, name);
        }

        return Create(new ParsedPrompt(background, obj, colour, motion, [], []), seed, vocabulary);
    }

    /// <summary>The scene as manifest facts: the resolved slots and the layout, invariant-culture text.</summary>
    public IReadOnlyDictionary<string, string> ToFacts() => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["scene.background"] = Background,
        ["scene.object"] = Object,
        ["scene.colour"] = Colour,
        ["scene.motion"] = Motion,
        ["scene.seed"] = Seed.ToString(CultureInfo.InvariantCulture),
        ["scene.layout"] = string.Create(
            CultureInfo.InvariantCulture,
            $"x={Layout.ObjectX:0.###} y={Layout.ObjectY:0.###} size={Layout.ObjectSize:0.###} travel={Layout.Travel:0.###} horizon={Layout.Horizon:0.###}"),
    };

    // The draw order is part of the dataset recipe: append new draws at the end, never reorder.
    private static SceneLayout DrawLayout(string obj, long seed)
    {
        var random = new SplitMix64(unchecked((ulong)seed));
        var x = random.NextDouble(0.35, 0.65);

        // Cars and boats sit on the ground or the water below the horizon, birds fly above it, balls go anywhere low.
        var (yMin, yMax) = obj switch
        {
            "car" => (0.68, 0.78),
            "boat" => (0.66, 0.76),
            "bird" => (0.22, 0.42),
            _ => (0.45, 0.72),
        };
        var y = random.NextDouble(yMin, yMax);
        var size = random.NextDouble(0.2, 0.28);
        var travel = random.NextDouble(0.85, 1.0);
        var horizon = random.NextDouble(0.54, 0.62);
        var detail = random.NextUInt64();
        return new SceneLayout(x, y, size, travel, horizon, detail);
    }
}
