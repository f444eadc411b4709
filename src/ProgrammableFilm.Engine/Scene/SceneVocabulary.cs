using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Serialization;
using ProgrammableFilm.Engine.Imaging;

namespace ProgrammableFilm.Engine.Scene;

/// <summary>
/// The words the procedural engine and the <c>pf-scene</c> model understand: four ordered lists of canonical names
/// (their order is the model's index order, 1-based, 0 meaning none), the phrases that name each entry, the colours'
/// RGB values, and the filler words a prompt may contain without being reported as unknown.
/// </summary>
public sealed class SceneVocabulary
{
    private const string ResourceName = "ProgrammableFilm.Engine.Scene.vocabulary.json";

    private static readonly Lazy<SceneVocabulary> DefaultVocabulary = new(LoadDefault);

    private readonly IReadOnlyList<string>[] _names;
    private readonly FrozenDictionary<string, Rgb> _colours;
    private readonly FrozenSet<string> _stopWords;

    private SceneVocabulary(
        IReadOnlyList<string>[] names,
        FrozenDictionary<string, Rgb> colours,
        FrozenDictionary<string, VocabularyTerm> phrases,
        FrozenSet<string> stopWords)
    {
        _names = names;
        _colours = colours;
        _stopWords = stopWords;
        Phrases = phrases;
        LongestPhrase = phrases.Keys.Max(p => p.Split(' ').Length);
    }

    /// <summary>The vocabulary shipped with the engine (embedded resource <c>Scene/vocabulary.json</c>).</summary>
    public static SceneVocabulary Default => DefaultVocabulary.Value;

    /// <summary>Background names in model index order.</summary>
    public IReadOnlyList<string> Backgrounds => _names[(int)SceneSlot.Background];

    /// <summary>Object names in model index order.</summary>
    public IReadOnlyList<string> Objects => _names[(int)SceneSlot.Object];

    /// <summary>Colour names in model index order.</summary>
    public IReadOnlyList<string> Colours => _names[(int)SceneSlot.Colour];

    /// <summary>Motion names in model index order.</summary>
    public IReadOnlyList<string> Motions => _names[(int)SceneSlot.Motion];

    /// <summary>Every phrase (normalised: lower-case words joined by one space) and what it names.</summary>
    internal FrozenDictionary<string, VocabularyTerm> Phrases { get; }

    /// <summary>The number of words in the longest phrase, which bounds the parser's look-ahead.</summary>
    internal int LongestPhrase { get; }

    /// <summary>The canonical names of <paramref name="slot"/>, in model index order.</summary>
    public IReadOnlyList<string> Names(SceneSlot slot) => _names[(int)slot];

    /// <summary>The model index of <paramref name="name"/> in <paramref name="slot"/>: 1-based, 0 when <paramref name="name"/> is null.</summary>
    /// <exception cref="ArgumentException">The name is not a canonical name of that slot.</exception>
    public int IndexOf(SceneSlot slot, string? name)
    {
        if (name is null)
        {
            return 0;
        }

        var names = _names[(int)slot];
        for (var i = 0; i < names.Count; i++)
        {
            if (string.Equals(names[i], name, StringComparison.Ordinal))
            {
                return i + 1;
            }
        }

        throw new ArgumentException($"'{name}' is not a {slot} of the vocabulary.", nameof(name));
    }

    /// <summary>The RGB value of a canonical colour name.</summary>
    /// <exception cref="ArgumentException">The name is not a colour of the vocabulary.</exception>
    public Rgb ColourOf(string colour) =>
        _colours.TryGetValue(colour, out var rgb)
            ? rgb
            : throw new ArgumentException($"'{colour}' is not a colour of the vocabulary.", nameof(colour));

    /// <summary>Whether a lower-case word is known filler that names nothing.</summary>
    public bool IsStopWord(string word) => _stopWords.Contains(word);

    /// <summary>Reads a vocabulary in the format of the embedded <c>vocabulary.json</c>.</summary>
    /// <exception cref="InvalidDataException">A slot is missing or empty, a colour lacks its RGB value, or one phrase names two entries.</exception>
    public static SceneVocabulary Load(Stream json)
    {
        var file = JsonSerializer.Deserialize<VocabularyFile>(json)
            ?? throw new InvalidDataException("The vocabulary file is empty.");
        var names = new IReadOnlyList<string>[4];
        var colours = new Dictionary<string, Rgb>(StringComparer.Ordinal);
        var phrases = new Dictionary<string, VocabularyTerm>(StringComparer.Ordinal);
        foreach (var slot in Enum.GetValues<SceneSlot>())
        {
            var key = SlotKey(slot);
            if (!file.Slots.TryGetValue(key, out var entries) || entries.Count == 0)
            {
                throw new InvalidDataException($"The vocabulary has no '{key}' entries.");
            }

            names[(int)slot] = entries.Select(e => e.Name).ToArray();
            foreach (var entry in entries)
            {
                if (slot == SceneSlot.Colour)
                {
                    colours[entry.Name] = entry.Rgb is [var r and >= 0 and <= 255, var g and >= 0 and <= 255, var b and >= 0 and <= 255]
                        ? new Rgb((byte)r, (byte)g, (byte)b)
                        : throw new InvalidDataException($"Colour '{entry.Name}' needs an rgb triple of 0..255 values.");
                }

                // The canonical name is itself a phrase: "night-city" is matched as "night city".
                foreach (var phrase in entry.Phrases.Prepend(entry.Name))
                {
                    AddPhrase(phrases, phrase, new VocabularyTerm(slot, entry.Name, Implied: false));
                }

                foreach (var phrase in entry.ImpliedBy)
                {
                    AddPhrase(phrases, phrase, new VocabularyTerm(slot, entry.Name, Implied: true));
                }
            }
        }

        return new SceneVocabulary(
            names,
            colours.ToFrozenDictionary(StringComparer.Ordinal),
            phrases.ToFrozenDictionary(StringComparer.Ordinal),
            file.StopWords.SelectMany(PromptParser.Tokenize).ToFrozenSet(StringComparer.Ordinal));
    }

    /// <summary>The JSON key of a slot in the vocabulary file and in dataset metadata.</summary>
    public static string SlotKey(SceneSlot slot) => slot switch
    {
        SceneSlot.Background => "background",
        SceneSlot.Object => "object",
        SceneSlot.Colour => "colour",
        SceneSlot.Motion => "motion",
        _ => throw new ArgumentOutOfRangeException(nameof(slot), slot, null),
    };

    private static void AddPhrase(Dictionary<string, VocabularyTerm> phrases, string phrase, VocabularyTerm term)
    {
        var key = string.Join(' ', PromptParser.Tokenize(phrase));
        if (phrases.TryGetValue(key, out var existing) && existing != term)
        {
            throw new InvalidDataException($"The phrase '{key}' names both {existing.Slot} '{existing.Name}' and {term.Slot} '{term.Name}'.");
        }

        phrases[key] = term;
    }

    private static SceneVocabulary LoadDefault()
    {
        using var stream = typeof(SceneVocabulary).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The embedded resource {ResourceName} is missing from the engine assembly.");
        return Load(stream);
    }

    private sealed record VocabularyFile(
        [property: JsonPropertyName("slots")] Dictionary<string, List<VocabularyEntry>> Slots,
        [property: JsonPropertyName("stopWords")] List<string> StopWords);

    private sealed record VocabularyEntry(
        [property: JsonPropertyName("name")] string Name,
        [property: JsonPropertyName("phrases")] List<string>? PhraseList,
        [property: JsonPropertyName("impliedBy")] List<string>? ImpliedByList,
        [property: JsonPropertyName("rgb")] int[]? Rgb)
    {
        public IEnumerable<string> Phrases => PhraseList ?? [];

        public IEnumerable<string> ImpliedBy => ImpliedByList ?? [];
    }
}

/// <summary>What a phrase names. An implied term ("racing" → left-to-right) fills its slot only when no phrase names that slot outright.</summary>
internal sealed record VocabularyTerm(SceneSlot Slot, string Name, bool Implied);
