using ProgrammableFilm.Engine;

namespace ProgrammableFilm.Engine.Diffusion.Tests;

/// <summary>Loads the model once per test class run (the weights are a few MB; loading packs every conv).</summary>
public sealed class ModelFixture : IDisposable
{
    private readonly Dictionary<int, DiffusionModel> _models = [];

    public DiffusionModel Get(int threads)
    {
        lock (_models)
        {
            if (!_models.TryGetValue(threads, out var m))
            {
                m = DiffusionModel.Load(ModelLocator.FindRequired(), new DiffusionModelOptions { Threads = threads, MaxFrameBatch = 4 });
                _models[threads] = m;
            }

            return m;
        }
    }

    public void Dispose()
    {
        foreach (var m in _models.Values)
        {
            m.Dispose();
        }
    }
}

public sealed class EngineTests(ModelFixture fixture) : IClassFixture<ModelFixture>
{
    private static RenderRequest Keyframes(params int[] frames) => new()
    {
        Prompt = "a red ball rolling left to right over grass",
        Width = 256,
        Height = 256,
        Steps = 4,
        Guidance = 3.0,
        Seed = 1234,
        TotalFrames = 9,
        FrameIndices = frames,
    };

    [Fact]
    public async Task Same_seed_gives_byte_identical_frames_with_one_and_two_threads()
    {
        using var one = new DiffusionEngine(fixture.Get(1));
        using var two = new DiffusionEngine(fixture.Get(2));
        var keys = await one.RenderAsync(Keyframes(0, 8), null, CancellationToken.None);
        var keysAgain = await two.RenderAsync(Keyframes(0, 8), null, CancellationToken.None);
        for (int i = 0; i < keys.Frames.Count; i++)
        {
            Assert.Equal(keys.Frames[i].Image.Pixels, keysAgain.Frames[i].Image.Pixels);
        }

        var segment = Keyframes(1, 2, 3, 4, 5, 6, 7) with
        {
            StartKeyframe = new ConditioningFrame(0, keys.Frames[0].Image),
            EndKeyframe = new ConditioningFrame(8, keys.Frames[1].Image),
        };
        var a = await one.RenderAsync(segment, null, CancellationToken.None);
        var b = await two.RenderAsync(segment, null, CancellationToken.None);
        Assert.Equal(7, a.Frames.Count);
        for (int i = 0; i < a.Frames.Count; i++)
        {
            Assert.Equal(segment.FrameIndices[i], a.Frames[i].FrameIndex);
            Assert.Equal(a.Frames[i].Image.Pixels, b.Frames[i].Image.Pixels);
        }

        Assert.Equal("inbetween", a.Facts["mode"]);
    }

    [Fact]
    public async Task Frames_are_native_64x64_and_facts_describe_the_render()
    {
        using var engine = new DiffusionEngine(fixture.Get(2));
        var result = await engine.RenderAsync(Keyframes(0) with { Prompt = "a red ball zorbing over grass" }, null, CancellationToken.None);
        var frame = Assert.Single(result.Frames);
        Assert.Equal((64, 64), (frame.Image.Width, frame.Image.Height));
        Assert.Equal("diffusion", engine.Name);
        Assert.Equal("64x64", result.Facts["native_resolution"]);
        Assert.Equal("true", result.Facts["upscaled_at_assembly"]);
        Assert.Equal("pf-scene-v3", result.Facts["model"]);
        Assert.Equal(64, result.Facts["weights_sha256"].Length);
        Assert.Equal("ddim", result.Facts["sampler"]);
        Assert.Equal("4", result.Facts["steps"]);
        Assert.Equal("keyframe", result.Facts["mode"]);
        Assert.Contains("zorbing", result.UnknownWords);

        // The object's box came from the scene plan; the prompt named no motion, so the plan keeps it still.
        Assert.Contains("planned", result.Facts["layout"]);
        Assert.Equal("ball", result.Facts["scene.object"]);
        Assert.Equal("static", result.Facts["scene.motion"]);
    }

    [Fact]
    public async Task Cancellation_stops_between_steps()
    {
        using var engine = new DiffusionEngine(fixture.Get(2));
        using var cts = new CancellationTokenSource();
        var reports = new List<RenderProgress>();
        var progress = new SyncProgress(p =>
        {
            reports.Add(p);
            if (p.Completed >= 2)
            {
                cts.Cancel();
            }
        });
        var request = Keyframes(0, 1) with { Steps = 50 };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => engine.RenderAsync(request, progress, cts.Token));
        Assert.Equal(100, reports[0].Total);
        Assert.Equal(2, reports[^1].Completed);
    }

    [Fact]
    public async Task Progress_counts_steps_times_frames()
    {
        using var engine = new DiffusionEngine(fixture.Get(2));
        var reports = new List<RenderProgress>();
        await engine.RenderAsync(Keyframes(3, 4, 5), new SyncProgress(reports.Add), CancellationToken.None);
        Assert.Equal(new RenderProgress(12, 12), reports[^1]);
        Assert.True(reports.Zip(reports.Skip(1)).All(p => p.First.Completed <= p.Second.Completed));
    }

    [Fact]
    public async Task Init_image_with_zero_strength_is_kept()
    {
        using var engine = new DiffusionEngine(fixture.Get(2));
        var plate = new RgbImage(64, 64);
        for (int i = 0; i < plate.Pixels.Length; i++)
        {
            plate.Pixels[i] = (byte)(i * 7);
        }

        var result = await engine.RenderAsync(Keyframes(0) with { InitImage = plate, InitStrength = 0 }, null, CancellationToken.None);
        Assert.Equal(plate.Pixels, result.Frames[0].Image.Pixels);
        var moved = await engine.RenderAsync(Keyframes(0) with { InitImage = plate, InitStrength = 0.5 }, null, CancellationToken.None);
        Assert.NotEqual(plate.Pixels, moved.Frames[0].Image.Pixels);
    }

    private sealed class SyncProgress(Action<RenderProgress> report) : IProgress<RenderProgress>
    {
        public void Report(RenderProgress value) => report(value);
    }
}
