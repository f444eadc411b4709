using System.Globalization;
using System.Text;

namespace ProgrammableFilm.Domain.Specs;

/// <summary>
/// What text a spec field may hold. PostgreSQL's text type cannot store U+0000 or half a surrogate pair, and no field
/// means anything by a control character, so these are refused by name and position rather than failing the insert.
/// </summary>
public static class SpecText
{
    /// <summary>Why <paramref name="text"/> cannot be stored, or null if it can.</summary>
    public static string? Problem(string text, bool multiLine)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                return $"contains an unpaired surrogate (U+{(int)c:X4}) at position {i + 1}, which is not valid Unicode";
            }
            else if (char.IsControl(c) && c < '\u0080' && !(multiLine && c is '\t' or '\n'))
            {
                return $"contains a control character (U+{(int)c:X4}) at position {i + 1}";
            }
        }

        return null;
    }

    /// <summary>
    /// The text with control characters and unpaired surrogates written as <c>\uXXXX</c>, for echoing a key in a field
    /// path or message: a lone surrogate cannot even be written into a JSON response, and a raw control character
    /// would break the CLI's one-line error.
    /// </summary>
    public static string Printable(string text)
    {
        if (Problem(text, multiLine: false) is null)
        {
            return text;
        }

        var printable = new StringBuilder(text.Length + 16);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                printable.Append(c).Append(text[++i]);
            }
            else if (char.IsSurrogate(c) || (char.IsControl(c) && c < '\u0080'))
            {
                printable.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
            }
            else
            {
                printable.Append(c);
            }
        }

        return printable.ToString();
    }
}
