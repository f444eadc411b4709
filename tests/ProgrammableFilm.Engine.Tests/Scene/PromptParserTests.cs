using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Tests.Scene;

public sealed class PromptParserTests
{
    private static readonly SceneVocabulary Vocabulary = SceneVocabulary.Default;

    [Fact]
    public void Vocabulary_lists_the_model_slots_in_the_contract_order()
    {
        Assert.Equal(["desert", "night-city", "ocean", "forest", "snow", "sunset-sky"], Vocabulary.Backgrounds);
        Assert.Equal(["car", "ball", "bird", "boat"], Vocabulary.Objects);
        Assert.Equal(["red", "green", "blue", "yellow", "white", "black", "orange", "purple"], Vocabulary.Colours);
        Assert.Equal(["left-to-right", "right-to-left", "rising", "falling", "approaching", "static"], Vocabulary.Motions);
    }

    [Theory]
    [InlineData("A RED car, racing across the DESERT!!", "desert", "car", "red", "left-to-right")]
    [InlineData("a car racing from right to left", null, "car", null, "right-to-left")]
    [InlineData("a blue boat sailing on the sea", "ocean", "boat", "blue", "left-to-right")]
    [InlineData("a green bird rising over the city at night", "night-city", "bird", "green", "rising")]
    [InlineData("a yellow ball coming towards the camera in the woods", "forest", "ball", "yellow", "approaching")]
    [InlineData("a parked black car in the snow", "snow", "car", "black", "static")]
    [InlineData("a violet sphere sinking through the sky at sunset", "sunset-sky", "ball", "purple", "falling")]
    [InlineData("Night-City; white BIRD, left-to-right.", "night-city", "bird", "white", "left-to-right")]
    [InlineData("an orange ball descending at dusk", "sunset-sky", "ball", "orange", "falling")]
    public void Parses_names_synonyms_and_phrases_case_and_punctuation_insensitively(
        string prompt, string? background, string? obj, string? colour, string? motion)
    {
        var parsed = PromptParser.Parse(prompt, Vocabulary);

        Assert.Equal(background, parsed.Background);
        Assert.Equal(obj, parsed.Object);
        Assert.Equal(colour, parsed.Colour);
        Assert.Equal(motion, parsed.Motion);
    }

    [Fact]
    public void Sky_alone_names_no_background_and_is_reported_as_unknown()
    {
        var parsed = PromptParser.Parse("a bird high in the sky", Vocabulary);

        Assert.Null(parsed.Background);
        Assert.Equal(["high", "sky"], parsed.UnknownWords);
    }

    [Fact]
    public void Unknown_words_are_listed_lower_case_in_prompt_order()
    {
        var parsed = PromptParser.Parse("A shiny red Dragon flying majestically over the ocean", Vocabulary);

        Assert.Equal(["shiny", "dragon", "majestically"], parsed.UnknownWords);
        Assert.Equal("red", parsed.Colour);
        Assert.Equal("ocean", parsed.Background);
        Assert.Null(parsed.Object);
    }

    [Fact]
    public void Stop_words_are_neither_unknown_nor_meaningful()
    {
        var parsed = PromptParser.Parse("the a an of with and is moving", Vocabulary);

        Assert.Empty(parsed.UnknownWords);
        Assert.Equal([0, 0, 0, 0], parsed.ToModelIndices(Vocabulary));
    }

    [Fact]
    public void A_named_motion_overrides_the_motion_implied_by_the_verb()
    {
        var parsed = PromptParser.Parse("a red car racing upwards", Vocabulary);

        Assert.Equal("rising", parsed.Motion);
        Assert.Empty(parsed.IgnoredPhrases);
    }

    [Fact]
    public void The_first_named_entry_of_a_slot_wins_and_later_conflicts_are_reported()
    {
        var parsed = PromptParser.Parse("a blue and red car in the desert at sunset", Vocabulary);

        Assert.Equal("blue", parsed.Colour);
        Assert.Equal("desert", parsed.Background);
        Assert.Equal(["red", "sunset"], parsed.IgnoredPhrases);
    }

    [Fact]
    public void Model_indices_are_one_based_in_slot_order_with_zero_for_unnamed_slots()
    {
        var parsed = PromptParser.Parse("a purple boat in the forest", Vocabulary);

        Assert.Equal([4, 4, 8, 0], parsed.ToModelIndices(Vocabulary));
    }

    [Fact]
    public void Empty_prompt_names_nothing()
    {
        var parsed = PromptParser.Parse("  ...  ", Vocabulary);

        Assert.Null(parsed.Background);
        Assert.Null(parsed.Object);
        Assert.Null(parsed.Colour);
        Assert.Null(parsed.Motion);
        Assert.Empty(parsed.UnknownWords);
    }

    [Fact]
    public void Index_of_an_unknown_name_throws()
    {
        Assert.Throws<ArgumentException>(() => Vocabulary.IndexOf(SceneSlot.Object, "dragon"));
    }

    [Fact]
    public void A_phrase_naming_two_entries_is_rejected_when_loading()
    {
        const string json = """
            {"slots": {
              "background": [{"name": "desert", "phrases": ["sand"]}, {"name": "ocean", "phrases": ["sand"]}],
              "object": [{"name": "car"}], "colour": [{"name": "red", "rgb": [1, 2, 3]}], "motion": [{"name": "static"}]},
             "stopWords": []}
            """;
        using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json));

        Assert.Throws<InvalidDataException>(() => SceneVocabulary.Load(stream));
    }
}
