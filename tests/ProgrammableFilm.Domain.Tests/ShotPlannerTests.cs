using ProgrammableFilm.Domain.Planning;

namespace ProgrammableFilm.Domain.Tests;

public class ShotPlannerTests
{
    [Theory]
    [InlineData(72, 12)]
    [InlineData(73, 12)]
    [InlineData(1, 12)]
    [InlineData(2, 12)]
    [InlineData(13, 12)]
    [InlineData(100, 7)]
    [InlineData(10, 1)]
    [InlineData(10, 2)]
    [InlineData(5, 240)]
    public void Every_frame_is_rendered_exactly_once(int frameCount, int interval)
    {
        var plan = ShotPlanner.Plan(frameCount, interval);

        var rendered = plan.Where(t => t.Kind != TaskKind.Assemble).SelectMany(t => t.Frames).ToList();
        Assert.Equal(Enumerable.Range(0, frameCount), rendered.Order());
        var assemble = Assert.Single(plan, t => t.Kind == TaskKind.Assemble);
        Assert.Equal(Enumerable.Range(0, frameCount), assemble.Frames);
        Assert.Equal(plan.Count, ShotPlanner.TaskCount(frameCount, interval));
    }

    [Fact]
    public void Segments_depend_on_the_two_keyframes_around_them()
    {
        var plan = ShotPlanner.Plan(72, 12);

        var keyframes = plan.Where(t => t.Kind == TaskKind.Keyframe).Select(t => t.Frames.Single()).ToList();
        Assert.Equal([0, 12, 24, 36, 48, 60, 71], keyframes);
        var segments = plan.Where(t => t.Kind == TaskKind.Segment).ToList();
        Assert.Equal(6, segments.Count);
        var last = segments[^1];
        Assert.Equal(61, last.Frames[0]);
        Assert.Equal(70, last.Frames[^1]);
        Assert.Equal((60, 71), (last.StartKeyframe, last.EndKeyframe));
        Assert.Equal(["kf-00060", "kf-00071"], last.DependsOn);
        Assert.All(segments, s => Assert.Equal([$"kf-{s.StartKeyframe:D5}", $"kf-{s.EndKeyframe:D5}"], s.DependsOn));
    }

    [Fact]
    public void Assembly_waits_for_every_other_task_and_keyframes_wait_for_nothing()
    {
        var plan = ShotPlanner.Plan(30, 12);

        var assemble = Assert.Single(plan, t => t.Kind == TaskKind.Assemble);
        Assert.Equal(plan.Where(t => t.Kind != TaskKind.Assemble).Select(t => t.Key), assemble.DependsOn);
        Assert.All(plan.Where(t => t.Kind == TaskKind.Keyframe), k => Assert.Empty(k.DependsOn));
        Assert.Equal(plan.Count, plan.Select(t => t.Key).Distinct().Count());
    }

    [Fact]
    public void A_one_frame_shot_is_one_keyframe_and_its_assembly()
    {
        var plan = ShotPlanner.Plan(1, 12);

        Assert.Equal([TaskKind.Keyframe, TaskKind.Assemble], plan.Select(t => t.Kind));
        Assert.Equal([0], plan[0].Frames);
    }

    [Fact]
    public void A_duration_that_is_not_a_multiple_of_the_interval_ends_on_a_keyframe_and_a_short_segment()
    {
        var plan = ShotPlanner.Plan(27, 12);

        Assert.Equal([0, 12, 24, 26], plan.Where(t => t.Kind == TaskKind.Keyframe).Select(t => t.Frames.Single()));
        Assert.Equal([25], plan.Single(t => t.Key == "seg-00024-00026").Frames);
    }

    [Fact]
    public void Adjacent_keyframes_have_no_empty_segment_between_them()
    {
        var plan = ShotPlanner.Plan(14, 12);

        Assert.Equal([0, 12, 13], plan.Where(t => t.Kind == TaskKind.Keyframe).Select(t => t.Frames.Single()));
        Assert.Single(plan, t => t.Kind == TaskKind.Segment);
        Assert.All(plan, t => Assert.NotEmpty(t.Frames));
    }

    [Fact]
    public void An_interpolating_shot_gets_one_interpolate_task_after_its_assembly()
    {
        var shot = new Specs.ShotSpec { Name = "s", Prompt = "p", DurationSeconds = 1, Fps = 12, Width = 64, Height = 64, Steps = 4, Guidance = 3, Seed = 1, Engine = "procedural", KeyframeInterval = 4, Interpolate = 3 };

        var plan = ShotPlanner.Plan(shot);

        var interpolate = Assert.Single(plan, t => t.Kind == TaskKind.Interpolate);
        Assert.Equal(["assemble"], interpolate.DependsOn);
        Assert.Equal(Enumerable.Range(0, 12), interpolate.Frames);
        Assert.Equal(plan.Count, ShotPlanner.TaskCount(shot));
        Assert.DoesNotContain(ShotPlanner.Plan(shot with { Interpolate = 1 }), t => t.Kind == TaskKind.Interpolate);
    }
}
