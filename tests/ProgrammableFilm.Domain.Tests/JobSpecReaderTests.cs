using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Domain.Tests;

public class JobSpecReaderTests
{
    private const string ValidYaml = """
        project: demo
        lane: preview
        priority: 70
        shots:
          - name: racing-at-dusk
            prompt: a red car racing left to right at dusk
            duration: 3
            fps: 24
            width: 640
            height: 360
            steps: 20
            guidance: 3.5
            seed: 42
            engine: procedural
            keyframeInterval: 12
        """;

    [Fact]
    public void Valid_yaml_is_read_with_every_field()
    {
        var result = JobSpecReader.ReadYaml(ValidYaml);

        Assert.Empty(result.Errors);
        var spec = result.Spec!;
        Assert.Equal("demo", spec.Project);
        Assert.Equal(Lane.Preview, spec.Lane);
        Assert.Equal(70, spec.Priority);
        var shot = Assert.Single(spec.Shots);
        Assert.Equal("racing-at-dusk", shot.Name);
        Assert.Equal(72, shot.FrameCount);
        Assert.Equal(3.5, shot.Guidance);
        Assert.Equal(42, shot.Seed);
        Assert.Equal(12, shot.KeyframeInterval);
    }

    [Fact]
    public void Json_and_yaml_of_the_same_spec_read_the_same()
    {
        const string json = """
            {"project":"demo","lane":"preview","priority":70,"shots":[{"name":"racing-at-dusk","prompt":"a red car racing left to right at dusk",
             "duration":3,"fps":24,"width":640,"height":360,"steps":20,"guidance":3.5,"seed":42,"engine":"procedural","keyframeInterval":12}]}
            """;

        var fromJson = JobSpecReader.ReadJson(json).Spec!;
        var fromYaml = JobSpecReader.ReadYaml(ValidYaml).Spec!;

        Assert.Equal(fromYaml with { Shots = [] }, fromJson with { Shots = [] });
        Assert.Equal(fromYaml.Shots[0], fromJson.Shots[0]);
    }

    [Fact]
    public void Omitted_optional_fields_take_documented_defaults_and_a_seed_derived_from_the_name()
    {
        var result = JobSpecReader.ReadYaml("""
            project: demo
            shots:
              - name: a
                prompt: a ball
                duration: 1
                fps: 12
                width: 64
                height: 64
            """);

        var shot = Assert.Single(result.Spec!.Shots);
        Assert.Equal(Lane.Batch, result.Spec.Lane);
        Assert.Equal(SpecLimits.DefaultPriority, result.Spec.Priority);
        Assert.Equal(SpecLimits.DefaultSteps, shot.Steps);
        Assert.Equal(SpecLimits.DefaultEngine, shot.Engine);
        Assert.Equal(SpecLimits.DefaultKeyframeInterval, shot.KeyframeInterval);
        Assert.Equal(JobSpecReader.DefaultSeed("demo", "a"), shot.Seed);
        Assert.NotEqual(JobSpecReader.DefaultSeed("demo", "a"), JobSpecReader.DefaultSeed("demo", "b"));
    }

    [Theory]
    [InlineData("fps: 24", "fps: 0", "shots[0].fps", "from 1 to 120")]
    [InlineData("duration: 3", "duration: 1000", "shots[0].duration", "at most 600")]
    [InlineData("width: 640", "width: 642", "shots[0].width", "multiple of 8")]
    [InlineData("height: 360", "height: 32", "shots[0].height", "from 64 to 4096")]
    [InlineData("engine: procedural", "engine: sora", "shots[0].engine", "not one of: procedural, diffusion")]
    [InlineData("prompt: a red car racing left to right at dusk", "prompt: \"\"", "shots[0].prompt", "must not be empty")]
    [InlineData("prompt: a red car racing left to right at dusk", "prompt: \"   \"", "shots[0].prompt", "must not be empty")]
    [InlineData("seed: 42", "seed: 42\n    colour: red", "shots[0].colour", "unknown field")]
    [InlineData("priority: 70", "priority: 70\ncost: 5", "cost", "unknown field")]
    [InlineData("priority: 70", "priority: 70\nbudget: 5", "budget", "must be a mapping with limitUsd")]
    [InlineData("lane: preview", "lane: urgent", "lane", "not one of: preview, batch")]
    [InlineData("steps: 20", "steps: 0", "shots[0].steps", "from 1 to 200")]
    [InlineData("guidance: 3.5", "guidance: 31", "shots[0].guidance", "between 0 and 30")]
    [InlineData("fps: 24", "fps: 23.976", "shots[0].fps", "must be an integer")]
    [InlineData("project: demo", "project: Demo Project", "project", "lower-case letters")]
    [InlineData("keyframeInterval: 12", "keyframeInterval: 0", "shots[0].keyframeInterval", "from 1 to 240")]
    [InlineData("width: 640", "width: [640]", "shots[0].width", "single value")]
    public void Each_broken_rule_names_the_field_and_the_rule(string valid, string broken, string field, string rule)
    {
        var yaml = ValidYaml.Replace(valid, broken, StringComparison.Ordinal);
        Assert.NotEqual(ValidYaml, yaml);

        var result = JobSpecReader.ReadYaml(yaml);

        Assert.Null(result.Spec);
        var error = Assert.Single(result.Errors, e => e.Field == field);
        Assert.Contains(rule, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_hundred_thousand_frame_shot_is_rejected_with_its_frame_count()
    {
        var result = JobSpecReader.ReadYaml(ValidYaml.Replace("duration: 3", "duration: 600", StringComparison.Ordinal).Replace("fps: 24", "fps: 120", StringComparison.Ordinal));

        var error = Assert.Single(result.Errors);
        Assert.Equal("shots[0].duration", error.Field);
        Assert.Contains("72000 frames", error.Message, StringComparison.Ordinal);
        Assert.Contains("at most 10000", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_error_is_reported_not_just_the_first()
    {
        var result = JobSpecReader.ReadYaml(ValidYaml
            .Replace("fps: 24", "fps: 0", StringComparison.Ordinal)
            .Replace("width: 640", "width: 641", StringComparison.Ordinal)
            .Replace("engine: procedural", "engine: nope", StringComparison.Ordinal));

        Assert.Equal(["shots[0].fps", "shots[0].width", "shots[0].engine"], result.Errors.Select(e => e.Field));
    }

    [Theory]
    [InlineData("project: demo\nshots: [unclosed", "malformed YAML at line")]
    [InlineData("project: demo\n  bad-indent: x\n shots:", "malformed YAML")]
    [InlineData("- just\n- a list", "must be a mapping")]
    [InlineData("project: demo\nproject: again\nshots: []", "malformed YAML")]
    [InlineData("project: demo\n---\nproject: demo\n---\n[]", "expected one YAML document, found 3")]
    [InlineData("", "expected one YAML document, found 0")]
    public void Malformed_yaml_is_one_clear_error(string yaml, string message)
    {
        var result = JobSpecReader.ReadYaml(yaml);

        Assert.Null(result.Spec);
        Assert.Contains(message, Assert.Single(result.Errors).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "malformed JSON")]
    [InlineData("{\"project\": \"demo\",}", "malformed JSON")]
    [InlineData("{\"project\": \"demo\", \"project\": \"x\", \"shots\": []}", "duplicate key 'project'")]
    public void Malformed_json_is_one_clear_error(string json, string message)
    {
        var result = JobSpecReader.ReadJson(json);

        Assert.Contains(message, Assert.Single(result.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Shot_names_must_be_unique_within_a_job()
    {
        var yaml = """
            project: demo
            shots:
              - {name: a, prompt: x, duration: 1, fps: 1, width: 64, height: 64}
              - {name: a, prompt: y, duration: 1, fps: 1, width: 64, height: 64}
            """;

        var error = Assert.Single(JobSpecReader.ReadYaml(yaml).Errors);

        Assert.Equal("shots[1].name", error.Field);
    }

    [Fact]
    public void A_job_without_shots_is_rejected()
    {
        Assert.Equal("shots", Assert.Single(JobSpecReader.ReadYaml("project: demo\nshots: []").Errors).Field);
        Assert.Equal("shots", Assert.Single(JobSpecReader.ReadYaml("project: demo").Errors).Field);
    }

    [Fact]
    public void Retries_and_after_default_to_three_and_nothing()
    {
        var spec = JobSpecReader.ReadYaml(ValidYaml).Spec!;

        Assert.Equal(SpecLimits.DefaultRetries, spec.Retries);
        Assert.Empty(spec.After);
    }

    [Fact]
    public void Retries_and_after_are_read_from_yaml_and_json()
    {
        var first = Guid.CreateVersion7();
        var second = Guid.CreateVersion7();

        var fromYaml = JobSpecReader.ReadYaml(ValidYaml.Replace("priority: 70", $"priority: 70\nretries: 0\nafter:\n  - {first}\n  - {second}", StringComparison.Ordinal)).Spec!;
        var fromJson = JobSpecReader.ReadJson($$"""
            {"project": "demo", "retries": 10, "after": ["{{first}}", "{{second}}"],
             "shots": [{"name": "a", "prompt": "a ball", "duration": 1, "fps": 1, "width": 64, "height": 64}]}
            """).Spec!;

        Assert.Equal(0, fromYaml.Retries);
        Assert.Equal(10, fromJson.Retries);
        Assert.Equal([first, second], fromYaml.After);
        Assert.Equal([first, second], fromJson.After);
    }

    [Theory]
    [InlineData("retries: 11", "retries", "from 0 to 10")]
    [InlineData("retries: -1", "retries", "from 0 to 10")]
    [InlineData("retries: 1.5", "retries", "must be an integer")]
    [InlineData("retries: [3]", "retries", "single value")]
    [InlineData("after: 0198c1f2-5a4b-7c3d-8e9f-0a1b2c3d4e5f", "after", "must be a list of job ids")]
    [InlineData("after: [0198c1f2-5a4b-7c3d-8e9f-0a1b2c3d4e5f, job-42]", "after[1]", "'job-42' is not a job id")]
    [InlineData("after: [0198c1f2-5a4b-7c3d-8e9f-0a1b2c3d4e5f, [0198c1f2-5a4b-7c3d-8e9f-0a1b2c3d4e5f]]", "after[1]", "must be a job id")]
    [InlineData("after: [0198c1f2-5a4b-7c3d-8e9f-0a1b2c3d4e5f, 0198C1F2-5A4B-7C3D-8E9F-0A1B2C3D4E5F]", "after[1]", "listed more than once")]
    [InlineData("after: [{id: 0198c1f2-5a4b-7c3d-8e9f-0a1b2c3d4e5f}]", "after[0]", "must be a job id")]
    public void Retries_and_after_broken_rules_name_the_field(string line, string field, string rule)
    {
        var result = JobSpecReader.ReadYaml(ValidYaml.Replace("priority: 70", $"priority: 70\n{line}", StringComparison.Ordinal));

        Assert.Null(result.Spec);
        Assert.Contains(rule, Assert.Single(result.Errors, e => e.Field == field).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void After_lists_at_most_twenty_jobs()
    {
        var ids = string.Join(", ", Enumerable.Range(0, SpecLimits.MaxJobDependencies + 1).Select(_ => Guid.NewGuid()));

        var error = Assert.Single(JobSpecReader.ReadYaml(ValidYaml.Replace("priority: 70", $"priority: 70\nafter: [{ids}]", StringComparison.Ordinal)).Errors);

        Assert.Equal(("after", "may list at most 20 jobs, found 21"), (error.Field, error.Message));
        Assert.Empty(JobSpecReader.ReadYaml(ValidYaml.Replace("priority: 70", $"priority: 70\nafter: [{ids[38..]}]", StringComparison.Ordinal)).Errors);
    }

    [Fact]
    public void Frames_beyond_the_pixel_limit_are_rejected()
    {
        var result = JobSpecReader.ReadYaml(ValidYaml.Replace("width: 640", "width: 4096", StringComparison.Ordinal).Replace("height: 360", "height: 4096", StringComparison.Ordinal));

        Assert.Contains("pixels per frame", Assert.Single(result.Errors).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(24, 2, null)]
    [InlineData(24, 5, "shots[0].interpolate")]
    [InlineData(24, 0, "shots[0].interpolate")]
    [InlineData(60, 4, "shots[0].interpolate")]
    public void Interpolation_is_a_factor_of_2_to_4_within_the_frame_rate_limit(int fps, int factor, string? field)
    {
        var result = JobSpecReader.ReadYaml($"""
            project: demo
            shots:
              - name: s
                prompt: a red car racing left to right
                duration: 1
                fps: {fps}
                width: 64
                height: 64
                interpolate: {factor}
            """);

        if (field is null)
        {
            Assert.Empty(result.Errors);
            Assert.Equal(factor, result.Spec!.Shots[0].Interpolate);
        }
        else
        {
            Assert.Contains(result.Errors, e => e.Field == field);
        }
    }

    [Fact]
    public void Shots_inherit_the_jobs_anchors_unless_they_override_or_opt_out()
    {
        var result = JobSpecReader.ReadYaml("""
            project: demo
            anchors:
              background: snow
              object: car
              colour: red
              seed: 77
            shots:
              - {name: inherits, prompt: a ball bouncing left to right, duration: 1, fps: 8, width: 64, height: 64}
              - {name: overrides, prompt: a blue car racing left to right, seed: 3, duration: 1, fps: 8, width: 64, height: 64}
              - {name: alone, prompt: a ball bouncing left to right, anchors: false, duration: 1, fps: 8, width: 64, height: 64}
            """);

        Assert.Empty(result.Errors);
        var shots = result.Spec!.Shots;
        Assert.Equal("a ball bouncing left to right, red car in the snow", shots[0].Prompt);
        Assert.Equal(77, shots[0].Seed);
        Assert.Equal(3, shots[1].Seed);
        Assert.Equal(new AnchorSpec("snow", "car", "red", 77), shots[1].Anchors);
        Assert.Equal("a ball bouncing left to right", shots[2].Prompt);
        Assert.Null(shots[2].Anchors);
        Assert.NotEqual(77, shots[2].Seed);
    }

    [Fact]
    public void Anchors_naming_nothing_are_an_error_on_the_field()
    {
        var result = JobSpecReader.ReadYaml("""
            project: demo
            anchors: {}
            shots:
              - {name: s, prompt: a ball, duration: 1, fps: 8, width: 64, height: 64}
            """);

        Assert.Contains(result.Errors, e => e.Field == "anchors.background");
    }

    [Fact]
    public void A_budget_is_read_exactly_with_the_default_soft_fraction_and_no_budget_is_null()
    {
        var budgeted = JobSpecReader.ReadYaml(ValidYaml.Replace("shots:", "budget: {limitUsd: 12.50}\nshots:", StringComparison.Ordinal));
        var json = JobSpecReader.ReadJson("""{"project": "demo", "budget": {"limitUsd": 0.000001, "softFraction": 0.5}, "shots": [{"name": "s", "prompt": "a ball", "duration": 1, "fps": 8, "width": 64, "height": 64}]}""");

        Assert.Empty(budgeted.Errors);
        Assert.Equal(new JobBudgetSpec(12.50m, 0.8), budgeted.Spec!.Budget);
        Assert.Equal(new JobBudgetSpec(0.000001m, 0.5), json.Spec!.Budget);
        Assert.Null(JobSpecReader.ReadYaml(ValidYaml).Spec!.Budget);
    }

    [Theory]
    [InlineData("{limitUsd: -5}", "budget.limitUsd")]
    [InlineData("{limitUsd: 1e400}", "budget.limitUsd")]
    [InlineData("{limitUsd: 10.0000001}", "budget.limitUsd")]
    [InlineData("{limitUsd: twelve}", "budget.limitUsd")]
    [InlineData("{softFraction: 0.5}", "budget.limitUsd")]
    [InlineData("{limitUsd: 10, softFraction: 0}", "budget.softFraction")]
    [InlineData("{limitUsd: 10, softFraction: .inf}", "budget.softFraction")]
    [InlineData("{limitUsd: [10]}", "budget.limitUsd")]
    [InlineData("{limitUsd: 10, hard: 12}", "budget.hard")]
    [InlineData("[10]", "budget")]
    public void A_bad_budget_is_an_error_on_its_field(string budget, string field)
    {
        var result = JobSpecReader.ReadYaml(ValidYaml.Replace("shots:", $"budget: {budget}\nshots:", StringComparison.Ordinal));

        Assert.False(result.IsValid);
        Assert.Equal(field, Assert.Single(result.Errors).Field);
    }
}
