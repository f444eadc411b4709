using System.Globalization;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Domain.Takes;

/// <summary>
/// The next iteration of a shot: a one-shot job whose shot is the approved take's parameters and whose variants are
/// the caller's (<c>variants:</c> as in a spec, each an override of the approved take). It goes through the spec
/// reader like any submission, so every rule and limit holds; errors are named as in the request body
/// (<c>variants.grid.seed[1]</c>).
/// </summary>
public static class Iteration
{
    public static SpecReadResult Build(string project, ShotSpec approved, SpecNode? variants, string? lane, int? priority)
    {
        static KeyValuePair<string, SpecNode> Field(string name, string value, bool isString = false) => new(name, new SpecScalar(value, isString));
        string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

        List<KeyValuePair<string, SpecNode>> shot =
        [
            Field("name", approved.Name, true),
            Field("prompt", approved.Prompt, true),
            Field("duration", Number(approved.DurationSeconds)),
            Field("fps", approved.Fps.ToString(CultureInfo.InvariantCulture)),
            Field("width", approved.Width.ToString(CultureInfo.InvariantCulture)),
            Field("height", approved.Height.ToString(CultureInfo.InvariantCulture)),
            Field("steps", approved.Steps.ToString(CultureInfo.InvariantCulture)),
            Field("guidance", Number(approved.Guidance)),
            Field("seed", approved.Seed.ToString(CultureInfo.InvariantCulture)),
            Field("engine", approved.Engine, true),
            Field("keyframeInterval", approved.KeyframeInterval.ToString(CultureInfo.InvariantCulture)),
            Field("interpolate", approved.Interpolate.ToString(CultureInfo.InvariantCulture)),
        ];
        if (approved.Plate is { Id: { } plate } used)
        {
            SpecNode strength = used.Schedule is { } schedule ? new SpecList([.. schedule.Select(s => new SpecScalar(Number(s), false))]) : new SpecScalar(Number(used.Strength), false);
            shot.Add(new("plate", new SpecMap([Field("id", plate.ToString(), true), new("strength", strength)])));
        }

        if (variants is null)
        {
            return new SpecReadResult(null, [new SpecError("variants", "is required: a list of overrides, or grid: a mapping of parameters to lists")]);
        }

        shot.Add(new("variants", variants));
        List<KeyValuePair<string, SpecNode>> job = [Field("project", project, true), Field("name", $"iteration of {approved.Name}", true), new("shots", new SpecList([new SpecMap(shot)]))];
        if (lane is not null)
        {
            job.Add(Field("lane", lane, true));
        }

        if (priority is not null)
        {
            job.Add(Field("priority", priority.Value.ToString(CultureInfo.InvariantCulture)));
        }

        // The approved prompt already carries its anchors' words: they are kept as the take's record (the drift check,
        // the manifest) rather than passed to the reader, which would append them a second time.
        var result = JobSpecReader.Read(new SpecMap(job));
        return result.IsValid
            ? result with { Spec = result.Spec! with { Shots = [.. result.Spec.Shots.Select(s => s with { Anchors = approved.Anchors })] } }
            : result with { Errors = [.. result.Errors.Select(e => e with { Field = e.Field.StartsWith("shots[0].", StringComparison.Ordinal) ? e.Field["shots[0].".Length..] : e.Field })] };
    }
}
