using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Tests.Scene;

public sealed class SceneDescriptionTests
{
    private static readonly SceneVocabulary Vocabulary = SceneVocabulary.Default;

    [Fact]
    public void Open_slots_get_the_documented_defaults()
    {
        var scene = SceneDescription.FromPrompt("something nice", 1, Vocabulary);

        Assert.Equal(("desert", "ball", "red", "static"), (scene.Background, scene.Object, scene.Colour, scene.Motion));
        Assert.Equal(Vocabulary.ColourOf("red"), scene.ObjectColour);
        Assert.Equal([0, 0, 0, 0], scene.Prompt.ToModelIndices(Vocabulary));
    }

    [Fact]
    public void Same_seed_gives_the_same_layout()
    {
        var a = SceneDescription.FromPrompt("a red car", 42, Vocabulary);
        var b = SceneDescription.FromPrompt("a red car", 42, Vocabulary);

        Assert.Equal(a.Layout, b.Layout);
    }

    [Fact]
    public void Different_seeds_give_different_layouts()
    {
        var layouts = Enumerable.Range(0, 20).Select(seed => SceneDescription.FromPrompt("a red car", seed, Vocabulary).Layout).ToHashSet();

        Assert.Equal(20, layouts.Count);
    }

    [Fact]
    public void Layout_is_pinned_by_the_SplitMix64_algorithm()
    {
        // Reference values of SplitMix64 seeded with 1234567 (from the published C implementation).
        var random = new SplitMix64(1234567);

        Assert.Equal(6457827717110365317UL, random.NextUInt64());
        Assert.Equal(3203168211198807973UL, random.NextUInt64());
    }
}
