using System.Text;

namespace ProgrammableFilm.Engine.Scene;

/// <summary>Turns a free-text prompt into a <see cref="ParsedPrompt"/> against a <see cref="SceneVocabulary"/>.</summary>
public static class PromptParser
{
    /// <summary>
    /// Parses <paramref name="prompt"/>: case-insensitive; punctuation and hyphens separate words; the longest vocabulary
    /// phrase starting at each word wins ("from left to right" before "left"). For each slot the first phrase that names it
    /// outright wins; an implied phrase ("racing") counts only when none does. Later phrases naming a different entry of a
    /// filled slot are listed in <see cref="ParsedPrompt.IgnoredPhrases"/>; an implied phrase that loses is not, because
    /// it is usually just the verb ("racing from right to left").
    /// </summary>
    public static ParsedPrompt Parse(string prompt, SceneVocabulary vocabulary)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(vocabulary);

        var words = Tokenize(prompt).ToArray();
        var unknown = new List<string>();
        var matches = new List<(string Phrase, VocabularyTerm Term)>();
        for (var i = 0; i < words.Length;)
        {
            var matched = 0;
            for (var length = Math.Min(vocabulary.LongestPhrase, words.Length - i); length >= 1 && matched == 0; length--)
            {
                var phrase = string.Join(" ", words, i, length);
                if (vocabulary.Phrases.TryGetValue(phrase, out var term))
                {
                    matches.Add((phrase, term));
                    matched = length;
                }
            }

            if (matched == 0)
            {
                if (!vocabulary.IsStopWord(words[i]))
                {
                    unknown.Add(words[i]);
                }

                matched = 1;
            }

            i += matched;
        }

        var chosen = new string?[4];
        foreach (var (_, term) in matches.Where(m => !m.Term.Implied))
        {
            chosen[(int)term.Slot] ??= term.Name;
        }

        foreach (var (_, term) in matches.Where(m => m.Term.Implied))
        {
            chosen[(int)term.Slot] ??= term.Name;
        }

        var ignored = matches
            .Where(m => !m.Term.Implied && !string.Equals(chosen[(int)m.Term.Slot], m.Term.Name, StringComparison.Ordinal))
            .Select(m => m.Phrase)
            .ToArray();
        return new ParsedPrompt(chosen[0], chosen[1], chosen[2], chosen[3], unknown, ignored);
    }

    /// <summary>Splits text into lower-case words: every character that is not a letter or a digit separates words.</summary>
    public static List<string> Tokenize(string text)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        foreach (var c in text)
        {
            if (char.IsLetterOrDigit(c))
            {
                word.Append(char.ToLowerInvariant(c));
            }
            else if (word.Length > 0)
            {
                words.Add(word.ToString());
                word.Clear();
            }
        }

        if (word.Length > 0)
        {
            words.Add(word.ToString());
        }

        return words;
    }
}
