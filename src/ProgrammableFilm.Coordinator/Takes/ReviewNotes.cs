using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Coordinator.Takes;

/// <summary>
/// The rules for a review's notes, shared by the API and <c>pfilm approve|reject --local</c> so that both refuse the
/// same input: a rejection always says why (a note given empty would reject takes with no reason), and every note is
/// printable text of a bounded length.
/// </summary>
public static class ReviewNotes
{
    public const int MaxLength = 1000;

    /// <param name="field">The request field the note came in, named by the error.</param>
    /// <param name="rejection">The note is the reason takes are rejected: given, it may not be blank.</param>
    /// <param name="required">The note must be given.</param>
    public static IEnumerable<SpecError> Check(string field, string? note, bool rejection, bool required)
    {
        if (note is null || note.Trim().Length == 0)
        {
            if (required || (rejection && note is not null))
            {
                yield return new SpecError(field, "is required: why the take is rejected");
            }

            yield break;
        }

        if (note.Length > MaxLength)
        {
            yield return new SpecError(field, $"must be at most {MaxLength} characters, found {note.Length}");
        }
        else if (SpecText.Problem(note, multiLine: true) is { } problem)
        {
            yield return new SpecError(field, problem);
        }
    }
}
