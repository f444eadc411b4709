namespace ProgrammableFilm.Engine.Scene;

/// <summary>
/// What a prompt names, slot by slot, as canonical vocabulary names (null when the prompt does not name the slot),
/// plus the words the vocabulary could not use. Nothing a user typed disappears silently: every word is a phrase,
/// a stop word, or listed here.
/// </summary>
/// <param name="Background">Canonical background name, or null.</param>
/// <param name="Object">Canonical object name, or null.</param>
/// <param name="Colour">Canonical colour name, or null.</param>
/// <param name="Motion">Canonical motion name, or null.</param>
/// <param name="UnknownWords">Words that are neither vocabulary phrases nor stop words, lower-case, in prompt order.</param>
/// <param name="IgnoredPhrases">Vocabulary phrases that named a slot already filled by an earlier phrase ("red" in "a blue and red car"), in prompt order.</param>
public sealed record ParsedPrompt(
    string? Background,
    string? Object,
    string? Colour,
    string? Motion,
    IReadOnlyList<string> UnknownWords,
    IReadOnlyList<string> IgnoredPhrases)
{
    /// <summary>The canonical name in <paramref name="slot"/>, or null.</summary>
    public string? Get(SceneSlot slot) => slot switch
    {
        SceneSlot.Background => Background,
        SceneSlot.Object => Object,
        SceneSlot.Colour => Colour,
        SceneSlot.Motion => Motion,
        _ => throw new ArgumentOutOfRangeException(nameof(slot), slot, null),
    };

    /// <summary>
    /// The model's conditioning indices in slot order (background, object, colour, motion): 1-based vocabulary
    /// indices, 0 for a slot the prompt does not name (the model then samples it freely, as in classifier-free dropout).
    /// </summary>
    public int[] ToModelIndices(SceneVocabulary vocabulary) =>
    [
        vocabulary.IndexOf(SceneSlot.Background, Background),
        vocabulary.IndexOf(SceneSlot.Object, Object),
        vocabulary.IndexOf(SceneSlot.Colour, Colour),
        vocabulary.IndexOf(SceneSlot.Motion, Motion),
    ];
}
