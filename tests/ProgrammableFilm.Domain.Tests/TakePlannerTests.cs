using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Domain.Takes;

namespace ProgrammableFilm.Domain.Tests;

public class TakePlannerTests
{
    private static ShotSpec Shot(string engine, string variants) => JobSpecReader.ReadYaml($"""
        project: p
        shots:
          - name: s
            prompt: a red ball
            duration: 1
            fps: 12
            width: 64
            height: 64
            engine: {engine}
            keyframeInterval: 4
            variants: {variants}
        """).Spec!.Shots[0];

    [Fact]
    public void A_grid_expands_in_order_and_each_take_overrides_only_its_parameters()
    {
        var shot = Shot("diffusion", "{grid: {seed: [1, 2, 3], guidance: [1.5, 6]}}");

        var takes = shot.Takes();
        Assert.Equal([(1L, 1.5), (1L, 6.0), (2L, 1.5), (2L, 6.0), (3L, 1.5), (3L, 6.0)], takes.Select(t => (t.Take.Seed, t.Take.Guidance)));
        Assert.All(takes, t => Assert.Equal((20, 4, "diffusion"), (t.Take.Steps, t.Take.KeyframeInterval, t.Take.Engine)));
        Assert.Null(takes[0].Overrides.Steps);
    }

    [Fact]
    public void Diffusion_takes_that_differ_in_guidance_share_nothing()
    {
        var plans = TakePlanner.Plan([.. Shot("diffusion", "{grid: {guidance: [1.5, 6]}}").Takes().Select(t => t.Take)]);

        Assert.All(plans.SelectMany(p => p), t => Assert.Null(t.ReusedFromTake));
    }

    [Fact]
    public void Procedural_takes_that_differ_only_in_guidance_reuse_every_frame_task_but_not_the_assembly()
    {
        var plans = TakePlanner.Plan([.. Shot("procedural", "{grid: {guidance: [1.5, 6]}}").Takes().Select(t => t.Take)]);

        Assert.All(plans[0], t => Assert.Null(t.ReusedFromTake));
        Assert.All(plans[1].Where(t => t.Task.Kind != TaskKind.Assemble), t => Assert.Equal(0, t.ReusedFromTake));
        Assert.Null(Assert.Single(plans[1], t => t.Task.Kind == TaskKind.Assemble).ReusedFromTake);
    }

    [Fact]
    public void Takes_with_other_keyframe_intervals_share_the_keyframes_and_segments_they_have_in_common()
    {
        var plans = TakePlanner.Plan([.. Shot("diffusion", "[{keyframeInterval: 4}, {keyframeInterval: 8}]").Takes().Select(t => t.Take)]);

        // Keyframes 0, 4, 8, 11 against 0, 8, 11: the segment 8–11 lies between the same two keyframes in both.
        Assert.Equal(["kf-00000", "kf-00008", "kf-00011", "seg-00008-00011"], plans[1].Where(t => t.ReusedFromTake == 0).Select(t => t.Task.Key));
        Assert.Null(Assert.Single(plans[1], t => t.Task.Key == "seg-00000-00008").ReusedFromTake);
    }

    [Fact]
    public void Engine_and_prompt_fragment_variants_render_their_own_prompt_and_engine_and_share_nothing()
    {
        var takes = Shot("diffusion", "[{promptFragment: at dusk}, {engine: procedural}]").Takes().Select(t => t.Take).ToList();

        Assert.Equal([("a red ball, at dusk", "diffusion"), ("a red ball", "procedural")], takes.Select(t => (t.Prompt, t.Engine)));
        Assert.All(TakePlanner.Plan(takes).SelectMany(p => p), t => Assert.Null(t.ReusedFromTake));
    }

    [Theory]
    [InlineData("{grid: {seed: [1, 2, 3, 4, 5], guidance: [1, 2, 3, 4, 5]}}", "shots[0].variants.grid")]
    [InlineData("{grid: {engine: [procedural, stylised]}}", "shots[0].variants.grid.engine[1]")]
    [InlineData("[{promptFragment: at dusk}, {promptFragment: at dusk}]", "shots[0].variants[1]")]
    [InlineData("{grid: {seed: [1], colour: [red]}}", "shots[0].variants.grid.colour")]
    [InlineData("[{seed: 1}, {seed: 1}]", "shots[0].variants[1]")]
    [InlineData("[{seed: 1, tint: red}]", "shots[0].variants[0].tint")]
    [InlineData("{grid: {steps: [4, 500]}}", "shots[0].variants.grid.steps[1]")]
    [InlineData("[]", "shots[0].variants")]
    [InlineData("{list: [{seed: 1}]}", "shots[0].variants.list")]
    public void Bad_variants_are_errors_naming_the_field(string variants, string field)
    {
        var result = JobSpecReader.ReadYaml($"""
            project: p
            shots:
              - {"{"}name: s, prompt: a red ball, duration: 1, fps: 12, width: 64, height: 64, variants: {variants}{"}"}
            """);

        Assert.False(result.IsValid);
        Assert.Contains(result.Errors, e => e.Field == field);
    }

    [Fact]
    public void A_preview_reduces_each_variants_steps_like_the_shots()
    {
        var shot = PreviewPolicy.Apply(Shot("diffusion", "[{steps: 40}, {seed: 9}]"));

        Assert.Equal([10, 5], shot.Takes().Select(t => t.Take.Steps));
    }

    [Fact]
    public void An_iteration_keeps_the_approved_takes_plate_and_interpolation()
    {
        var plate = Guid.CreateVersion7();
        var approved = new ShotSpec { Name = "s", Prompt = "a red ball bouncing left to right", DurationSeconds = 1, Fps = 8, Width = 64, Height = 64, Steps = 8, Guidance = 3, Seed = 1, Engine = "diffusion", KeyframeInterval = 4, Interpolate = 2, Plate = new PlateSpec(plate, null, 0.3) };

        var result = Iteration.Build("demo", approved, new SpecList([new SpecMap([new("seed", new SpecScalar("2", false))])]), null, null);

        Assert.Empty(result.Errors);
        var take = Assert.Single(result.Spec!.Shots).Takes().Single().Take;
        Assert.Equal((2L, 2, new PlateSpec(plate, null, 0.3)), (take.Seed, take.Interpolate, take.Plate));
    }
}

/// <summary>A camera plate's strength per keyframe: read, refused field by field, looked up, kept by an iteration.</summary>
public class PlateScheduleTests
{
    private static SpecReadResult Read(string strength) => JobSpecReader.ReadYaml($"""
        project: demo
        shots:
          - name: s
            prompt: a red ball bouncing left to right
            duration: 1
            fps: 8
            width: 64
            height: 64
            engine: diffusion
            keyframeInterval: 4
            plate:
              id: 0192e4a0-0000-7000-8000-000000000001
              strength: {strength}
        """);

    [Fact]
    public void A_list_gives_each_keyframe_its_strength_and_the_last_holds_for_the_rest()
    {
        var plate = Read("[0.2, 0.5]").Spec!.Shots[0].Plate!;

        Assert.Equal([0.2, 0.5], plate.Schedule!);
        Assert.Equal(0.2, plate.Strength);
        Assert.Equal([0.2, 0.5, 0.5], new[] { 0, 4, 7 }.Select(frame => PlateSpec.StrengthAt(plate.Strength, plate.Schedule, ShotPlanner.KeyframeIndex(frame, 4))));
        Assert.Equal(0.6, PlateSpec.StrengthAt(0.6, null, 3));
        Assert.Equal(plate.Schedule, PlateSpec.Parse(PlateSpec.Format(plate.Schedule)));
    }

    [Theory]
    [InlineData("[0.2, 1.5]", "shots[0].plate.strength[1]")]
    [InlineData("[0.2, high]", "shots[0].plate.strength[1]")]
    [InlineData("[0, 0.5]", "shots[0].plate.strength[0]")]
    [InlineData("[]", "shots[0].plate.strength")]
    [InlineData("2", "shots[0].plate.strength")]
    public void A_bad_schedule_names_the_value(string strength, string field)
    {
        var result = Read(strength);

        Assert.Null(result.Spec);
        Assert.Equal(field, Assert.Single(result.Errors).Field);
    }

    [Fact]
    public void An_iteration_keeps_the_schedule()
    {
        var approved = Read("[0.2, 0.5]").Spec!.Shots[0];

        var result = Iteration.Build("demo", approved, new SpecList([new SpecMap([new("seed", new SpecScalar("2", false))])]), null, null);

        Assert.Equal([0.2, 0.5], Assert.Single(result.Spec!.Shots).Plate!.Schedule!);
    }
}
