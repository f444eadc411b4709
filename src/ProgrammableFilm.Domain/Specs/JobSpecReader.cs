using System.Globalization;
using System.Text.RegularExpressions;
using ProgrammableFilm.Domain.Money;
using ProgrammableFilm.Domain.Planning;

namespace ProgrammableFilm.Domain.Specs;

/// <summary>One broken rule: the field's path in the document (<c>shots[0].fps</c>) and the rule, in words.</summary>
public sealed record SpecError(string Field, string Message);

/// <summary>Either a valid spec or every error found in it.</summary>
public sealed record SpecReadResult(JobSpec? Spec, IReadOnlyList<SpecError> Errors)
{
    public bool IsValid => Spec is not null;
}

/// <summary>
/// Validates a spec tree completely and builds a <see cref="JobSpec"/>. Every rule is checked before anything is
/// written, and every broken rule is reported, not just the first, so that one round trip fixes a spec.
/// </summary>
public static partial class JobSpecReader
{
    private static readonly string[] JobFields = ["project", "name", "lane", "priority", "retries", "after", "preview", "anchors", "budget", "shots"];
    private static readonly string[] AnchorFields = ["background", "object", "colour", "seed"];
    private static readonly string[] ShotFields = ["name", "prompt", "duration", "fps", "width", "height", "steps", "guidance", "seed", "engine", "keyframeInterval", "interpolate", "plate", "anchors", "variants"];
    private static readonly string[] BudgetFields = ["limitUsd", "softFraction"];
    private static readonly string[] PlateFields = ["id", "path", "strength"];
    private static readonly string[] VariantFields = ["seed", "guidance", "steps", "keyframeInterval", "engine", "promptFragment"];

    /// <summary>Reads YAML text (a spec file).</summary>
    public static SpecReadResult ReadYaml(string text) => ReadText(() => SpecDocument.ParseYaml(text));

    /// <summary>Reads JSON text (an API request body).</summary>
    public static SpecReadResult ReadJson(string text) => ReadText(() => SpecDocument.ParseJson(text));

    /// <summary>Reads an already parsed tree.</summary>
    public static SpecReadResult Read(SpecNode root)
    {
        var errors = new List<SpecError>();
        if (root is not SpecMap job)
        {
            return new SpecReadResult(null, [new SpecError("$", "the spec must be a mapping with project, lane, priority and shots")]);
        }

        var fields = new Fields(job, "", errors, JobFields);
        var project = fields.Slug("project", required: true);
        var name = fields.Text("name", required: false, maxLength: 200);
        var lane = fields.Choice("lane", ["preview", "batch"], "batch");
        var priority = fields.Integer("priority", SpecLimits.MinPriority, SpecLimits.MaxPriority, SpecLimits.DefaultPriority);
        var retries = fields.Integer("retries", 0, SpecLimits.MaxRetries, SpecLimits.DefaultRetries);
        var after = fields.JobIds("after", SpecLimits.MaxJobDependencies);
        var preview = fields.Choice("preview", ["true", "false"], "false");
        var anchors = ReadAnchors(fields.Node("anchors"), fields.PathOf("anchors"), errors);
        var budget = ReadBudget(fields.Node("budget"), fields.PathOf("budget"), errors);
        var shots = ReadShots(fields.Node("shots"), project, anchors, errors);

        if (errors.Count > 0)
        {
            return new SpecReadResult(null, errors);
        }

        var spec = new JobSpec(project!, name, lane == "preview" ? Lane.Preview : Lane.Batch, (int)priority!, shots)
        {
            Retries = (int)retries!,
            After = after,
            Anchors = anchors,
            Budget = budget,
        };
        return new SpecReadResult(preview == "true" ? PreviewPolicy.Apply(spec) : spec, []);
    }

    private static SpecReadResult ReadText(Func<SpecNode> parse)
    {
        try
        {
            return Read(parse());
        }
        catch (SpecSyntaxException e)
        {
            return new SpecReadResult(null, [new SpecError("$", e.Message)]);
        }
    }

    private static List<ShotSpec> ReadShots(SpecNode? node, string? project, AnchorSpec? anchors, List<SpecError> errors)
    {
        var shots = new List<ShotSpec>();
        if (node is null or SpecScalar { Text: null })
        {
            errors.Add(new SpecError("shots", "is required: a list of at least one shot"));
            return shots;
        }

        if (node is not SpecList list)
        {
            errors.Add(new SpecError("shots", "must be a list of shots"));
            return shots;
        }

        if (list.Items.Count is 0 or > SpecLimits.MaxShotsPerJob)
        {
            errors.Add(new SpecError("shots", $"must hold 1 to {SpecLimits.MaxShotsPerJob} shots, found {list.Items.Count}"));
            return shots;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < list.Items.Count; i++)
        {
            var path = $"shots[{i}]";
            if (list.Items[i] is not SpecMap map)
            {
                errors.Add(new SpecError(path, "must be a mapping with name, prompt, duration, fps, width and height"));
                continue;
            }

            var shot = ReadShot(new Fields(map, path + ".", errors, ShotFields), project, anchors);
            if (shot is null)
            {
                continue;
            }

            if (!names.Add(shot.Name))
            {
                errors.Add(new SpecError(path + ".name", $"'{shot.Name}' is used by another shot in this job; shot names must be unique"));
                continue;
            }

            shots.Add(shot);
        }

        var tasks = shots.Sum(s => s.Takes().Sum(t => (long)ShotPlanner.TaskCount(t.Take)));
        if (tasks > SpecLimits.MaxTasksPerJob)
        {
            errors.Add(new SpecError("shots", $"the job plans {tasks} tasks; a job holds at most {SpecLimits.MaxTasksPerJob} (split it into several jobs, or raise keyframeInterval)"));
        }

        return shots;
    }

    private static ShotSpec? ReadShot(Fields fields, string? project, AnchorSpec? anchors)
    {
        var errorsBefore = fields.ErrorCount;
        var name = fields.Slug("name", required: true);
        var prompt = fields.Text("prompt", required: true, maxLength: SpecLimits.MaxPromptLength, multiLine: true);
        var duration = fields.Number("duration", double.Epsilon, SpecLimits.MaxDurationSeconds, null, "greater than 0 and at most");
        var fps = fields.Integer("fps", SpecLimits.MinFps, SpecLimits.MaxFps, null);
        var width = fields.Dimension("width");
        var height = fields.Dimension("height");
        var steps = fields.Integer("steps", SpecLimits.MinSteps, SpecLimits.MaxSteps, SpecLimits.DefaultSteps);
        var guidance = fields.Number("guidance", SpecLimits.MinGuidance, SpecLimits.MaxGuidance, SpecLimits.DefaultGuidance, "between");
        var seed = fields.Integer("seed", 0, SpecLimits.MaxSeed, null, required: false);
        var engine = fields.Choice("engine", SpecLimits.Engines, SpecLimits.DefaultEngine);
        var keyframeInterval = fields.Integer("keyframeInterval", SpecLimits.MinKeyframeInterval, SpecLimits.MaxKeyframeInterval, SpecLimits.DefaultKeyframeInterval);
        var interpolate = fields.Integer("interpolate", 1, SpecLimits.MaxInterpolate, 1);
        if (fps is { } rate && interpolate is { } factor && rate * factor > SpecLimits.MaxFps)
        {
            fields.Error("interpolate", $"{rate} fps × {factor} is {rate * factor} fps; a shot plays at most {SpecLimits.MaxFps}");
        }

        if (duration is { } d && fps is { } f)
        {
            var frames = ShotFrames.Count(d, (int)f);
            if (frames < 1)
            {
                fields.Error("duration", $"{d.ToString(CultureInfo.InvariantCulture)} s at {f} fps is less than one frame");
            }
            else if (frames > SpecLimits.MaxFramesPerShot)
            {
                fields.Error("duration", $"{d.ToString(CultureInfo.InvariantCulture)} s at {f} fps is {frames} frames; a shot holds at most {SpecLimits.MaxFramesPerShot} (split it into several shots)");
            }
        }

        if (width is { } w && height is { } h && w * h > SpecLimits.MaxPixelsPerFrame)
        {
            fields.Error("width", $"{w}x{h} is more than {SpecLimits.MaxPixelsPerFrame} pixels per frame (3840x2160)");
        }

        var plate = ReadPlate(fields.Node("plate"), fields.PathOf("plate"), fields.Errors);
        if (plate is not null && engine is not null && engine != "diffusion")
        {
            fields.Error("plate", $"needs engine diffusion (the {engine} engine draws the prompt and has no init-image path)");
        }

        var inherits = fields.Choice("anchors", ["true", "false"], "true") == "true" ? anchors : null;
        if (inherits is not null && prompt is not null && inherits.ApplyTo(prompt).Length > SpecLimits.MaxPromptLength)
        {
            fields.Error("prompt", $"with the job's anchors appended it is {inherits.ApplyTo(prompt).Length} characters; a prompt holds at most {SpecLimits.MaxPromptLength}");
        }

        var variants = ReadVariants(fields.Node("variants"), fields.PathOf("variants"), fields.Errors);
        if (fields.ErrorCount > errorsBefore)
        {
            return null;
        }

        var shot = new ShotSpec
        {
            Name = name!,
            Prompt = inherits?.ApplyTo(prompt!) ?? prompt!,
            DurationSeconds = duration!.Value,
            Fps = (int)fps!.Value,
            Width = (int)width!.Value,
            Height = (int)height!.Value,
            Steps = (int)steps!.Value,
            Guidance = guidance!.Value,
            Seed = seed ?? inherits?.Seed ?? DefaultSeed(project ?? "", name!),
            Engine = engine!,
            KeyframeInterval = (int)keyframeInterval!.Value,
            Interpolate = (int)interpolate!.Value,
            Plate = plate,
            Anchors = inherits,
            Variants = variants,
        };
        CheckTakes(shot, fields);
        return fields.ErrorCount > errorsBefore ? null : shot;
    }

    /// <summary><c>anchors:</c> the sequence's background, recurring object and its colour (vocabulary phrases), and seed family.</summary>
    private static AnchorSpec? ReadAnchors(SpecNode? node, string path, List<SpecError> errors)
    {
        if (node is null or SpecScalar { Text: null })
        {
            return null;
        }

        if (node is not SpecMap map)
        {
            errors.Add(new SpecError(path, "must be a mapping with any of background, object, colour and seed"));
            return null;
        }

        var fields = new Fields(map, path + ".", errors, AnchorFields);
        var before = fields.ErrorCount;
        var anchors = new AnchorSpec(
            fields.Text("background", required: false, maxLength: SpecLimits.MaxAnchorLength),
            fields.Text("object", required: false, maxLength: SpecLimits.MaxAnchorLength),
            fields.Text("colour", required: false, maxLength: SpecLimits.MaxAnchorLength),
            fields.Integer("seed", 0, SpecLimits.MaxSeed, null, required: false));
        if (anchors == new AnchorSpec(null, null, null, null))
        {
            fields.Error("background", "anchors must name at least one of background, object, colour and seed");
        }

        return fields.ErrorCount > before ? null : anchors;
    }

    /// <summary><c>budget:</c> the job's own budget, with the fields and the rules of <c>PUT /api/jobs/{id}/budget</c>.</summary>
    private static JobBudgetSpec? ReadBudget(SpecNode? node, string path, List<SpecError> errors)
    {
        if (node is null or SpecScalar { Text: null })
        {
            return null;
        }

        if (node is not SpecMap map)
        {
            errors.Add(new SpecError(path, "must be a mapping with limitUsd (dollars) and optionally softFraction (default 0.8)"));
            return null;
        }

        var fields = new Fields(map, path + ".", errors, BudgetFields);
        var before = fields.ErrorCount;
        var limit = fields.Decimal("limitUsd", required: true);
        var softFraction = fields.Double("softFraction");
        if (fields.ErrorCount > before)
        {
            return null;
        }

        var (fraction, broken) = BudgetPolicy.CheckLimit(limit!.Value, softFraction);
        broken.ForEach(e => fields.Error(e.Field, e.Message));
        return broken.Count > 0 ? null : new JobBudgetSpec(limit.Value, fraction);
    }

    /// <summary><c>plate:</c> names an uploaded plate (<c>id</c>) or a local file or folder (<c>path</c>), and the strength.</summary>
    private static PlateSpec? ReadPlate(SpecNode? node, string path, List<SpecError> errors)
    {
        if (node is null or SpecScalar { Text: null })
        {
            return null;
        }

        if (node is not SpecMap map)
        {
            errors.Add(new SpecError(path, "must be a mapping with id (an uploaded plate) or path (a file for pfilm render), and strength"));
            return null;
        }

        var fields = new Fields(map, path + ".", errors, PlateFields);
        var before = fields.ErrorCount;
        var id = fields.Text("id", required: false, maxLength: 36);
        var file = fields.Text("path", required: false, maxLength: 4096);
        var schedule = fields.Node("strength") is SpecList list ? ReadStrengthSchedule(list, fields.PathOf("strength"), errors) : null;
        var strength = fields.Node("strength") is SpecList ? schedule?[0] : fields.Number("strength", 0.01, 1, SpecLimits.DefaultPlateStrength, "between");
        Guid parsed = default;
        if (id is not null && !Guid.TryParse(id, out parsed))
        {
            fields.Error("id", "must be a plate id (a UUID) returned by POST /api/projects/{project}/plates");
        }

        if ((id is null) == (file is null))
        {
            errors.Add(new SpecError(path, "must name exactly one of id (an uploaded plate) and path (a file for pfilm render)"));
        }

        return fields.ErrorCount > before || (id is null) == (file is null) ? null : new PlateSpec(id is null ? null : parsed, file, strength!.Value, schedule);
    }

    /// <summary><c>strength: [0.3, 0.5, 1]</c>: one strength per keyframe, each between 0.01 and 1.</summary>
    private static List<double>? ReadStrengthSchedule(SpecList list, string path, List<SpecError> errors)
    {
        if (list.Items.Count is 0 or > SpecLimits.MaxPlateSchedule)
        {
            errors.Add(new SpecError(path, $"a strength per keyframe holds 1 to {SpecLimits.MaxPlateSchedule} values; it has {list.Items.Count}"));
            return null;
        }

        var schedule = new List<double>(list.Items.Count);
        for (var i = 0; i < list.Items.Count; i++)
        {
            if (list.Items[i] is SpecScalar { Text: { } text, IsString: false } && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value is >= 0.01 and <= 1)
            {
                schedule.Add(value);
            }
            else
            {
                errors.Add(new SpecError($"{path}[{i}]", "must be a number between 0.01 and 1"));
            }
        }

        return schedule.Count == list.Items.Count ? schedule : null;
    }

    /// <summary>
    /// <c>variants:</c> is a list of overrides, or <c>grid:</c> a mapping of parameter to values whose product is
    /// the list. Each value obeys the rule of the shot field it overrides; the count is checked against
    /// <see cref="SpecLimits.MaxVariantsPerShot"/> before a grid is expanded.
    /// </summary>
    private static IReadOnlyList<VariantSpec> ReadVariants(SpecNode? node, string path, List<SpecError> errors)
    {
        switch (node)
        {
            case null or SpecScalar { Text: null }:
                return [];
            case SpecList list:
                if (list.Items.Count is 0 or > SpecLimits.MaxVariantsPerShot)
                {
                    errors.Add(new SpecError(path, $"must hold 1 to {SpecLimits.MaxVariantsPerShot} variants, found {list.Items.Count}"));
                    return [];
                }

                var variants = new List<VariantSpec>();
                for (var i = 0; i < list.Items.Count; i++)
                {
                    if (list.Items[i] is not SpecMap { Entries.Count: > 0 } map)
                    {
                        errors.Add(new SpecError($"{path}[{i}]", $"must be a mapping of the parameters it overrides ({string.Join(", ", VariantFields)})"));
                        continue;
                    }

                    variants.Add(ReadVariant(new Fields(map, $"{path}[{i}].", errors, VariantFields)));
                }

                return variants;
            case SpecMap map:
                return ReadGrid(new Fields(map, path + ".", errors, ["grid"]).Node("grid"), path + ".grid", errors);
            default:
                errors.Add(new SpecError(path, "must be a list of variants or a mapping with grid"));
                return [];
        }
    }

    private static IReadOnlyList<VariantSpec> ReadGrid(SpecNode? node, string path, List<SpecError> errors)
    {
        if (node is not SpecMap { Entries.Count: > 0 } grid)
        {
            errors.Add(new SpecError(path, $"must map parameters ({string.Join(", ", VariantFields)}) to lists of values"));
            return [];
        }

        var axes = new List<(string Field, SpecList Values)>();
        foreach (var (field, values) in grid.Entries)
        {
            if (!VariantFields.Contains(field, StringComparer.Ordinal))
            {
                errors.Add(new SpecError($"{path}.{SpecText.Printable(field)}", $"unknown parameter (a variant may set: {string.Join(", ", VariantFields)})"));
            }
            else if (values is not SpecList { Items.Count: > 0 } list)
            {
                errors.Add(new SpecError($"{path}.{field}", "must be a list of at least one value"));
            }
            else
            {
                axes.Add((field, list));
            }
        }

        var product = axes.Aggregate(1L, (count, axis) => Math.Min(count * axis.Values.Items.Count, long.MaxValue / 1024));
        if (product > SpecLimits.MaxVariantsPerShot)
        {
            errors.Add(new SpecError(path, $"makes {product} variants ({string.Join(" × ", axes.Select(a => $"{a.Values.Items.Count} {a.Field}"))}); a shot may sweep at most {SpecLimits.MaxVariantsPerShot}"));
            return [];
        }

        if (axes.Count < grid.Entries.Count)
        {
            return [];
        }

        // Each value is read through the rule of its field, then its errors are given the value's index.
        var parsed = new List<List<KeyValuePair<string, SpecNode>>>();
        foreach (var (field, values) in axes)
        {
            var column = new List<KeyValuePair<string, SpecNode>>();
            for (var i = 0; i < values.Items.Count; i++)
            {
                var local = new List<SpecError>();
                ReadVariant(new Fields(new SpecMap([new(field, values.Items[i])]), path + ".", local, VariantFields));
                errors.AddRange(local.Select(e => e with { Field = $"{e.Field}[{i}]" }));
                column.Add(new(field, values.Items[i]));
            }

            parsed.Add(column);
        }

        IEnumerable<IEnumerable<KeyValuePair<string, SpecNode>>> combinations = [[]];
        foreach (var column in parsed)
        {
            combinations = combinations.SelectMany(prefix => column.Select(value => prefix.Append(value)));
        }

        return [.. combinations.Select(entries => ReadVariant(new Fields(new SpecMap([.. entries]), path + ".", [], VariantFields)))];
    }

    private static VariantSpec ReadVariant(Fields fields) => new()
    {
        Seed = fields.Integer("seed", 0, SpecLimits.MaxSeed, null, required: false),
        Guidance = fields.Node("guidance") is null ? null : fields.Number("guidance", SpecLimits.MinGuidance, SpecLimits.MaxGuidance, null, "between"),
        Steps = (int?)fields.Integer("steps", SpecLimits.MinSteps, SpecLimits.MaxSteps, null, required: false),
        KeyframeInterval = (int?)fields.Integer("keyframeInterval", SpecLimits.MinKeyframeInterval, SpecLimits.MaxKeyframeInterval, null, required: false),
        Engine = fields.Node("engine") is null ? null : fields.Choice("engine", SpecLimits.Engines, SpecLimits.DefaultEngine),
        PromptFragment = fields.Text("promptFragment", required: false, maxLength: SpecLimits.MaxPromptLength),
    };

    /// <summary>Rules on the takes as rendered: a prompt with its fragment fits the prompt's limit; no two takes are the same render.</summary>
    private static void CheckTakes(ShotSpec shot, Fields fields)
    {
        var seen = new Dictionary<(long, double, int, int, string, string), int>();
        var takes = shot.Takes();
        for (var i = 0; i < shot.Variants.Count; i++)
        {
            var take = takes[i].Take;
            if (take.Prompt.Length > SpecLimits.MaxPromptLength)
            {
                fields.Error($"variants[{i}].promptFragment", $"makes a prompt of {take.Prompt.Length} characters; a prompt holds at most {SpecLimits.MaxPromptLength}");
            }

            if (!seen.TryAdd((take.Seed, take.Guidance, take.Steps, take.KeyframeInterval, take.Engine, take.Prompt), i))
            {
                fields.Error($"variants[{i}]", $"renders the same take as variants[{seen[(take.Seed, take.Guidance, take.Steps, take.KeyframeInterval, take.Engine, take.Prompt)]}]");
            }
        }
    }

    /// <summary>
    /// A shot without a seed still renders reproducibly: its seed is derived from project and shot name (FNV-1a),
    /// and the manifest records it.
    /// </summary>
    public static long DefaultSeed(string project, string shotName)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in $"{project}/{shotName}")
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return (long)(hash & (ulong)SpecLimits.MaxSeed);
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$")]
    private static partial Regex SlugPattern();

    /// <summary>Typed access to one mapping's fields; records an error per broken rule and rejects unknown fields.</summary>
    private sealed class Fields
    {
        private readonly Dictionary<string, SpecNode> _values = new(StringComparer.Ordinal);
        private readonly string _path;
        private readonly List<SpecError> _errors;

        public Fields(SpecMap map, string path, List<SpecError> errors, string[] known)
        {
            _path = path;
            _errors = errors;
            foreach (var (key, value) in map.Entries)
            {
                if (!known.Contains(key, StringComparer.Ordinal))
                {
                    Error(SpecText.Printable(key), $"unknown field (known fields: {string.Join(", ", known)})");
                    continue;
                }

                _values[key] = value;
            }
        }

        public int ErrorCount => _errors.Count;

        public List<SpecError> Errors => _errors;

        public string PathOf(string field) => _path + field;

        public void Error(string field, string message) => _errors.Add(new SpecError(_path + field, message));

        public SpecNode? Node(string field) => _values.GetValueOrDefault(field);

        public string? Text(string field, bool required, int maxLength, bool multiLine = false)
        {
            if (!TryScalar(field, out var text, multiLine))
            {
                return null;
            }

            if (text is null || text.Trim().Length == 0)
            {
                if (required)
                {
                    Error(field, "is required and must not be empty");
                }

                return null;
            }

            if (text.Length > maxLength)
            {
                Error(field, $"must be at most {maxLength} characters, found {text.Length}");
                return null;
            }

            return text.Trim();
        }

        public string? Slug(string field, bool required)
        {
            var text = Text(field, required, 63);
            if (text is not null && !SlugPattern().IsMatch(text))
            {
                Error(field, $"'{text}' must be lower-case letters, digits and '-', starting with a letter or digit");
                return null;
            }

            return text;
        }

        public string? Choice(string field, IReadOnlyList<string> choices, string fallback)
        {
            if (!TryScalar(field, out var text))
            {
                return null;
            }

            if (text is null)
            {
                return fallback;
            }

            if (!choices.Contains(text, StringComparer.Ordinal))
            {
                Error(field, $"'{text}' is not one of: {string.Join(", ", choices)}");
                return null;
            }

            return text;
        }

        public long? Integer(string field, long min, long max, long? fallback, bool required = true)
        {
            if (!TryScalar(field, out var text))
            {
                return null;
            }

            if (text is null)
            {
                if (fallback is null && required)
                {
                    Error(field, $"is required: an integer from {min} to {max}");
                }

                return fallback;
            }

            if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            {
                Error(field, $"'{text}' must be an integer from {min} to {max}");
                return null;
            }

            if (value < min || value > max)
            {
                Error(field, $"{value} must be from {min} to {max}");
                return null;
            }

            return value;
        }

        public long? Dimension(string field)
        {
            var value = Integer(field, SpecLimits.MinDimension, SpecLimits.MaxDimension, null);
            if (value is { } v && v % SpecLimits.DimensionMultiple != 0)
            {
                Error(field, $"{v} must be a multiple of {SpecLimits.DimensionMultiple}");
                return null;
            }

            return value;
        }

        public double? Number(string field, double min, double max, double? fallback, string rangeWords)
        {
            var range = min == double.Epsilon ? $"{rangeWords} {Format(max)}" : $"{rangeWords} {Format(min)} and {Format(max)}";
            if (!TryScalar(field, out var text))
            {
                return null;
            }

            if (text is null)
            {
                if (fallback is null)
                {
                    Error(field, $"is required: a number {range}");
                }

                return fallback;
            }

            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
            {
                Error(field, $"'{text}' must be a number {range}");
                return null;
            }

            if (value < min || value > max)
            {
                Error(field, $"{Format(value)} must be {range}");
                return null;
            }

            return value;
        }

        private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);

        /// <summary>A number read exactly (money); its range is the caller's rule.</summary>
        public decimal? Decimal(string field, bool required)
        {
            if (!TryScalar(field, out var text))
            {
                return null;
            }

            if (text is null)
            {
                if (required)
                {
                    Error(field, "is required: a number");
                }

                return null;
            }

            if (!decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                Error(field, $"'{text}' must be a number");
                return null;
            }

            return value;
        }

        /// <summary>An optional finite number; its range is the caller's rule.</summary>
        public double? Double(string field)
        {
            if (!TryScalar(field, out var text) || text is null)
            {
                return null;
            }

            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
            {
                Error(field, $"'{text}' must be a finite number");
                return null;
            }

            return value;
        }

        /// <summary>Job ids, each a GUID, none twice; an absent field is an empty list.</summary>
        public IReadOnlyList<Guid> JobIds(string field, int max)
        {
            switch (Node(field))
            {
                case null or SpecScalar { Text: null }:
                    return [];
                case SpecList list when list.Items.Count > max:
                    Error(field, $"may list at most {max} jobs, found {list.Items.Count}");
                    return [];
                case SpecList list:
                    var ids = new List<Guid>();
                    for (var i = 0; i < list.Items.Count; i++)
                    {
                        var item = $"{field}[{i}]";
                        if (list.Items[i] is not SpecScalar { Text: { } text })
                        {
                            Error(item, "must be a job id (a GUID)");
                        }
                        else if (IsStorable(item, text, multiLine: false))
                        {
                            if (!Guid.TryParse(text, out var id))
                            {
                                Error(item, $"'{text}' is not a job id (a GUID)");
                            }
                            else if (ids.Contains(id))
                            {
                                Error(item, $"{id} is listed more than once");
                            }
                            else
                            {
                                ids.Add(id);
                            }
                        }
                    }

                    return ids;
                default:
                    Error(field, "must be a list of job ids");
                    return [];
            }
        }

        /// <summary>Checked before any other rule, so that no message echoes a control character.</summary>
        private bool IsStorable(string field, string text, bool multiLine)
        {
            if (SpecText.Problem(text, multiLine) is { } problem)
            {
                Error(field, problem);
                return false;
            }

            return true;
        }

        private bool TryScalar(string field, out string? text, bool multiLine = false)
        {
            text = null;
            switch (Node(field))
            {
                case null:
                    return true;
                case SpecScalar scalar:
                    text = scalar.Text;
                    return text is null || IsStorable(field, text, multiLine);
                default:
                    Error(field, "must be a single value, not a list or mapping");
                    return false;
            }
        }
    }
}
