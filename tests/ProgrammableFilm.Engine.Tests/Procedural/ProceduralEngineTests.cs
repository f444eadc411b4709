using ProgrammableFilm.Engine.Procedural;
using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Tests.Procedural;

public sealed class ProceduralEngineTests
{
    private readonly ProceduralEngine _engine = new();

    [Fact]
    public async Task Renders_each_requested_frame_at_the_request_size_in_request_order()
    {
        var result = await _engine.RenderAsync(Request([0, 5, 9], width: 96, height: 54), null, CancellationToken.None);

        Assert.Equal([0, 5, 9], result.Frames.Select(f => f.FrameIndex));
        Assert.All(result.Frames, f => Assert.Equal((96, 54), (f.Image.Width, f.Image.Height)));
    }

    [Fact]
    public async Task Segment_frames_equal_the_same_frames_rendered_alone()
    {
        var segment = await _engine.RenderAsync(Request([3, 4, 5]), null, CancellationToken.None);
        var alone = await _engine.RenderAsync(Request([4]), null, CancellationToken.None);

        Assert.Equal(alone.Frames[0].Image.Pixels, segment.Frames[1].Image.Pixels);
    }

    [Fact]
    public async Task Frame_matches_the_renderer_at_its_shot_position()
    {
        var result = await _engine.RenderAsync(Request([5]), null, CancellationToken.None);
        var scene = SceneDescription.FromPrompt(Request([5]).Prompt, 77, SceneVocabulary.Default);

        Assert.Equal(ProceduralRenderer.RenderFrame(scene, 5 / 9.0, 64, 64).Pixels, result.Frames[0].Image.Pixels);
    }

    [Fact]
    public async Task Reports_progress_after_every_frame()
    {
        var progress = new Recorder();

        await _engine.RenderAsync(Request([1, 2, 3]), progress, CancellationToken.None);

        Assert.Equal([new RenderProgress(1, 3), new RenderProgress(2, 3), new RenderProgress(3, 3)], progress.Reports);
    }

    [Fact]
    public async Task Stops_between_frames_when_cancelled()
    {
        using var cancellation = new CancellationTokenSource();
        var progress = new Recorder(onReport: cancellation.Cancel);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _engine.RenderAsync(Request([0, 1, 2, 3]), progress, cancellation.Token));

        Assert.Single(progress.Reports);
    }

    [Fact]
    public async Task Returns_unknown_words_and_the_resolved_scene_as_facts()
    {
        var request = Request([0]) with { Prompt = "a gleaming purple car racing through the woods" };

        var result = await _engine.RenderAsync(request, null, CancellationToken.None);

        Assert.Equal(["gleaming"], result.UnknownWords);
        Assert.Equal("procedural", result.Facts["engine"]);
        Assert.Equal("forest", result.Facts["scene.background"]);
        Assert.Equal("left-to-right", result.Facts["scene.motion"]);
    }

    [Fact]
    public async Task Frame_outside_the_shot_is_rejected()
    {
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _engine.RenderAsync(Request([10]), null, CancellationToken.None));
    }

    /// <summary>The take planner shares frames between procedural takes that differ only in these (Domain/Takes/EngineInputs).</summary>
    [Fact]
    public async Task Steps_and_guidance_change_nothing_it_renders()
    {
        var plain = await _engine.RenderAsync(Request([0, 4, 9]), null, CancellationToken.None);
        var other = await _engine.RenderAsync(Request([0, 4, 9]) with { Steps = 3, Guidance = 12 }, null, CancellationToken.None);
        var seed = await _engine.RenderAsync(Request([0, 4, 9]) with { Seed = 78 }, null, CancellationToken.None);

        Assert.Equal(plain.Frames.Select(f => f.Image.Pixels), other.Frames.Select(f => f.Image.Pixels));
        Assert.NotEqual(plain.Frames[1].Image.Pixels, seed.Frames[1].Image.Pixels);
    }

    private static RenderRequest Request(int[] frames, int width = 64, int height = 64) => new()
    {
        Prompt = "a red car racing across the desert",
        Width = width,
        Height = height,
        Seed = 77,
        TotalFrames = 10,
        FrameIndices = frames,
    };

    /// <summary>Records synchronously; <see cref="Progress{T}"/> would post to the thread pool and race the assertions.</summary>
    private sealed class Recorder(Action? onReport = null) : IProgress<RenderProgress>
    {
        public List<RenderProgress> Reports { get; } = [];

        public void Report(RenderProgress value)
        {
            Reports.Add(value);
            onReport?.Invoke();
        }
    }
}
