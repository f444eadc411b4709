using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Text;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Domain.Tests;

/// <summary>Text written to hurt the reader: every case is one clean error, found fast, on a small stack.</summary>
public class HostileSpecTests
{
    // Valid as JSON and, being flow YAML, as YAML: each case below runs through both readers.
    private const string Valid = """
        {"project": "demo", "name": "a job", "lane": "batch", "priority": "50", "retries": "3",
         "after": ["0198c1f2-5a4b-7c3d-8e9f-0a1b2c3d4e5f"],
         "shots": [{"name": "s", "prompt": "a red ball", "duration": 1, "fps": "12", "width": 64, "height": 64, "engine": "procedural"}]}
        """;

    private static readonly Func<string, SpecReadResult>[] Readers = [JobSpecReader.ReadJson, JobSpecReader.ReadYaml];

    [Fact]
    public void The_template_is_valid_in_both_syntaxes()
    {
        Assert.All(Readers, read => Assert.Empty(read(Valid).Errors));
    }

    [Theory]
    [InlineData("a: &x [*x]")]
    [InlineData("&x {a: *x}")]
    [InlineData("project: demo\nshots: &s\n  - name: a\n    prompt: *s\n")]
    [InlineData("a: &x {b: [c, {d: *x}]}")]
    public void Alias_to_its_own_ancestor_is_one_error_not_a_stack_overflow(string yaml)
    {
        var error = SingleSyntaxError(() => JobSpecReader.ReadYaml(yaml));

        Assert.Contains("refers to its own ancestor", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Alias_to_an_undefined_anchor_is_one_error()
    {
        var error = SingleSyntaxError(() => JobSpecReader.ReadYaml("project: *nowhere\nshots: []"));

        Assert.Contains("*nowhere", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_alias_bomb_is_stopped_at_the_value_limit_without_expanding_it()
    {
        // Billion laughs: nine levels of nine aliases each expand to 9^9 (387 million) values.
        var yaml = new StringBuilder("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (var level = 1; level < 9; level++)
        {
            yaml.Append(System.Globalization.CultureInfo.InvariantCulture, $"l{level}: &l{level} [{string.Join(", ", Enumerable.Repeat($"*l{level - 1}", 9))}]\n");
        }

        var error = SingleSyntaxError(() => JobSpecReader.ReadYaml(yaml.ToString()));

        Assert.Contains($"more than {SpecLimits.MaxSpecNodes} values", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Aliases_within_the_limits_still_read_as_copies()
    {
        var result = JobSpecReader.ReadYaml("""
            project: demo
            shots:
              - name: a
                prompt: &prompt a red ball
                duration: 1
                fps: &fps 12
                width: &side 64
                height: *side
              - name: b
                prompt: *prompt
                duration: 1
                fps: *fps
                width: *side
                height: *side
            """);

        Assert.Empty(result.Errors);
        Assert.All(result.Spec!.Shots, shot => Assert.Equal(("a red ball", 12, 64), (shot.Prompt, shot.Fps, shot.Height)));
    }

    public static TheoryData<string, string> DeepDocuments => new()
    {
        { "yaml", new string('[', 10_000) + new string(']', 10_000) },
        { "yaml", string.Concat(Enumerable.Repeat("- ", 10_000)) + "x" },
        { "yaml", string.Concat(Enumerable.Repeat("{a: ", 10_000)) + "1" + new string('}', 10_000) },
        { "yaml", "project: demo\nshots: " + new string('[', 10_000) + new string(']', 10_000) },
        { "yaml", "a: &deep " + new string('[', 20) + new string(']', 20) + "\nb: " + new string('[', 20) + "*deep" + new string(']', 20) },
        { "json", new string('[', 10_000) + new string(']', 10_000) },
        { "json", string.Concat(Enumerable.Repeat("{\"a\": ", 10_000)) + "1" + new string('}', 10_000) },
        { "json", "{\"project\": \"demo\", \"shots\": " + new string('[', 10_000) + new string(']', 10_000) + "}" },
    };

    [Theory]
    [MemberData(nameof(DeepDocuments))]
    public void Nesting_beyond_the_depth_limit_is_one_error(string syntax, string text)
    {
        var error = SingleSyntaxError(() => syntax == "json" ? JobSpecReader.ReadJson(text) : JobSpecReader.ReadYaml(text));

        Assert.Matches($"more than {SpecLimits.MaxNestingDepth} levels deep|maximum configured depth of {SpecLimits.MaxNestingDepth} ", error.Message);
    }

    public static TheoryData<string, string, string, string> ControlCharacters()
    {
        // (text to replace, replacement with {0} for the character, field, 1-based position of the character)
        (string Find, string Replace, string Field, int Position)[] fields =
        [
            ("\"demo\"", "\"de{0}mo\"", "project", 3),
            ("\"a job\"", "\"a{0}job\"", "name", 2),
            ("\"batch\"", "\"{0}batch\"", "lane", 1),
            ("\"50\"", "\"50{0}\"", "priority", 3),
            ("\"3\"", "\"3{0}\"", "retries", 2),
            ("\"0198c1f2", "\"{0}0198c1f2", "after[0]", 1),
            ("\"s\"", "\"s{0}\"", "shots[0].name", 2),
            ("\"a red ball\"", "\"a red{0}ball\"", "shots[0].prompt", 6),
            ("\"12\"", "\"1{0}2\"", "shots[0].fps", 2),
            ("\"procedural\"", "\"proc{0}edural\"", "shots[0].engine", 5),
        ];
        string[] characters = ["\\u0000", "\\u0001", "\\u0008", "\\u001b", "\\u001f", "\\u007f", "\\t", "\\n", "\\r"];
        var data = new TheoryData<string, string, string, string>();
        foreach (var (find, replace, field, position) in fields)
        {
            foreach (var character in characters)
            {
                if (field == "shots[0].prompt" && character is "\\t" or "\\n")
                {
                    continue;
                }

                var code = character switch { "\\t" => "0009", "\\n" => "000A", "\\r" => "000D", _ => character[2..].ToUpperInvariant() };
                data.Add(Valid.Replace(find, string.Format(System.Globalization.CultureInfo.InvariantCulture, replace, character), StringComparison.Ordinal), field, code, $"{position}");
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ControlCharacters))]
    public void A_control_character_in_any_field_is_an_error_naming_the_field_and_position(string spec, string field, string code, string position)
    {
        foreach (var read in Readers)
        {
            var result = Fast(() => read(spec));

            Assert.Null(result.Spec);
            var error = Assert.Single(result.Errors);
            Assert.Equal(field, error.Field);
            Assert.Equal($"contains a control character (U+{code}) at position {position}", error.Message);
        }
    }

    [Fact]
    public void A_prompt_may_hold_tabs_and_line_breaks()
    {
        var spec = Valid.Replace("a red ball", "a red ball\\n\\trising over the ocean", StringComparison.Ordinal);

        Assert.All(Readers, read => Assert.Equal("a red ball\n\trising over the ocean", read(spec).Spec!.Shots[0].Prompt));
    }

    [Theory]
    [InlineData("a red\\ud800ball", "U+D800) at position 6")]
    [InlineData("a red\\udc00\\ud800ball", "U+DC00) at position 6")]
    [InlineData("a red ball\\ud83c", "U+D83C) at position 11")]
    public void An_unpaired_surrogate_is_an_error_naming_the_field(string prompt, string where)
    {
        var result = Fast(() => JobSpecReader.ReadJson(Valid.Replace("a red ball", prompt, StringComparison.Ordinal)));

        var error = Assert.Single(result.Errors);
        Assert.Equal("shots[0].prompt", error.Field);
        Assert.Contains($"unpaired surrogate ({where}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_surrogate_pair_is_ordinary_text()
    {
        var spec = Valid.Replace("a red ball", "a red ball \\ud83c\\udfac", StringComparison.Ordinal);

        Assert.Equal("a red ball \U0001F3AC", JobSpecReader.ReadJson(spec).Spec!.Shots[0].Prompt);
    }

    [Fact]
    public void Unpaired_surrogates_in_raw_text_or_yaml_escapes_are_errors_not_exceptions()
    {
        var raw = Valid.Replace("a red ball", "a red\ud800ball", StringComparison.Ordinal);

        Assert.Equal("$", Assert.Single(Fast(() => JobSpecReader.ReadJson(raw)).Errors).Field);
        Assert.Contains("unpaired surrogate", Assert.Single(Fast(() => JobSpecReader.ReadYaml(raw)).Errors, e => e.Field == "shots[0].prompt").Message, StringComparison.Ordinal);
        Assert.Equal("$", SingleSyntaxError(() => JobSpecReader.ReadYaml(Valid.Replace("a red ball", "a red\\ud800ball", StringComparison.Ordinal))).Field);
    }

    // YAML refuses an escaped unpaired surrogate as syntax, so that case is JSON only.
    [Theory]
    [InlineData("\"project\"", "\"pro\\u0000ject\"", "pro\\u0000ject", true)]
    [InlineData("\"fps\"", "\"fps\\n\"", "shots[0].fps\\u000A", true)]
    [InlineData("\"prompt\"", "\"prompt\\ud800\"", "shots[0].prompt\\uD800", false)]
    public void An_unknown_key_holding_a_control_character_is_named_printably(string key, string hostileKey, string field, bool yamlToo)
    {
        var spec = Valid.Replace(key, hostileKey, StringComparison.Ordinal);

        foreach (var read in yamlToo ? Readers : Readers[..1])
        {
            Assert.Contains("unknown field", Assert.Single(Fast(() => read(spec)).Errors, e => e.Field == field).Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_raw_nul_in_yaml_is_an_error_with_its_position()
    {
        var error = SingleSyntaxError(() => JobSpecReader.ReadYaml("project: demo\nshots:\n  - name: a\0b\n"));

        Assert.Equal("malformed YAML at line 3, column 12: a raw NUL character (U+0000) is not allowed", error.Message);
    }

    [Fact]
    public void Random_and_mutated_text_is_read_without_an_exception()
    {
        const string alphabet = "abcdefgh0123456789 :-,[]{}&*!|>'\"#%@?\\\n\t\0\u0001\u007f\u00e9\ud800\udc00";
        var random = new Random(15);
        var stopwatch = Stopwatch.StartNew();
        for (var i = 0; i < 3000; i++)
        {
            var text = new StringBuilder(i % 3 == 0 ? "" : Valid);
            for (var edit = random.Next(1, 12); edit > 0; edit--)
            {
                var at = random.Next(text.Length + 1);
                if (random.Next(3) == 0 && at < text.Length)
                {
                    text.Remove(at, Math.Min(random.Next(1, 8), text.Length - at));
                }
                else
                {
                    text.Insert(at, alphabet[random.Next(alphabet.Length)]);
                }
            }

            foreach (var read in Readers)
            {
                var result = read(text.ToString());
                Assert.True(result.IsValid || result.Errors.Count > 0);
            }
        }

        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(20), $"3000 documents took {stopwatch.Elapsed}");
    }

    private static SpecError SingleSyntaxError(Func<SpecReadResult> read)
    {
        var result = Fast(read);

        Assert.Null(result.Spec);
        var error = Assert.Single(result.Errors);
        Assert.Equal("$", error.Field);
        return error;
    }

    /// <summary>
    /// Reads on a thread with a quarter of the usual stack, so that any unbounded recursion fails here rather than in
    /// production, and within a second, so that any expansion of the input shows.
    /// </summary>
    private static SpecReadResult Fast(Func<SpecReadResult> read)
    {
        SpecReadResult? result = null;
        Exception? error = null;
        var thread = new Thread(
            () =>
            {
                try
                {
                    result = read();
                }
                catch (Exception e)
                {
                    error = e;
                }
            },
            maxStackSize: 256 * 1024);
        var stopwatch = Stopwatch.StartNew();
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            ExceptionDispatchInfo.Throw(error);
        }

        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(1), $"took {stopwatch.Elapsed}");
        return result!;
    }
}
