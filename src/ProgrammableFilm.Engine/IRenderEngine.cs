namespace ProgrammableFilm.Engine;

/// <summary>
/// Renders the frames of one task. Implementations are deterministic: the same request gives byte-identical frames.
/// The <c>diffusion</c> engine has a native CPU and a TorchSharp (GPU) implementation behind one name; a worker runs one
/// of them (<c>Worker:DiffusionEngine</c>).
/// </summary>
public interface IRenderEngine
{
    /// <summary>The engine name used in shot specs (<c>procedural</c>, <c>diffusion</c>).</summary>
    string Name { get; }

    /// <summary>Renders <see cref="RenderRequest.FrameIndices"/>; reports progress; stops between steps when cancelled.</summary>
    Task<RenderResult> RenderAsync(RenderRequest request, IProgress<RenderProgress>? progress, CancellationToken cancellationToken);
}

/// <summary>What one task asks an engine to render.</summary>
public sealed record RenderRequest
{
    /// <summary>The shot's prompt, parsed with <see cref="Scene.PromptParser"/>.</summary>
    public required string Prompt { get; init; }

    /// <summary>The shot's output size; an engine with a fixed native size renders at that size and says so in the result.</summary>
    public required int Width { get; init; }

    /// <inheritdoc cref="Width"/>
    public required int Height { get; init; }

    /// <summary>Sampler steps (ignored by engines without a sampler).</summary>
    public int Steps { get; init; } = 20;

    /// <summary>Classifier-free guidance scale (ignored by engines without a sampler).</summary>
    public double Guidance { get; init; } = 3.0;

    /// <summary>The shot's seed; every random choice of the engine derives from it.</summary>
    public required long Seed { get; init; }

    /// <summary>Number of frames in the whole shot; frame <c>i</c> sits at shot position <c>i / (TotalFrames - 1)</c>.</summary>
    public required int TotalFrames { get; init; }

    /// <summary>The shot frames this task renders, ascending.</summary>
    public required IReadOnlyList<int> FrameIndices { get; init; }

    /// <summary>For segment tasks: the keyframe before the segment (already rendered).</summary>
    public ConditioningFrame? StartKeyframe { get; init; }

    /// <summary>For segment tasks: the keyframe after the segment (already rendered).</summary>
    public ConditioningFrame? EndKeyframe { get; init; }

    /// <summary>Optional init plate (a frame from a real camera) the sampler starts from.</summary>
    public RgbImage? InitImage { get; init; }

    /// <summary>How far the sampler departs from <see cref="InitImage"/>: 0 keeps it, 1 ignores it.</summary>
    public double InitStrength { get; init; } = 0.6;

    /// <summary>Frames sampled together at most (fewer need less memory); null: the engine's own batch.</summary>
    public int? MaxFrameBatch { get; init; }
}

/// <summary>A rendered keyframe that conditions a segment.</summary>
public sealed record ConditioningFrame(int FrameIndex, RgbImage Image);

/// <summary>The frames of one task plus what the manifest should say about how they were made.</summary>
public sealed record RenderResult
{
    /// <summary>Rendered frames, one per requested index, in request order.</summary>
    public required IReadOnlyList<RenderedFrame> Frames { get; init; }

    /// <summary>Prompt words the engine's vocabulary does not know (they had no effect).</summary>
    public IReadOnlyList<string> UnknownWords { get; init; } = [];

    /// <summary>Facts for the manifest (model id, weights hash, native resolution, ...).</summary>
    public IReadOnlyDictionary<string, string> Facts { get; init; } = new Dictionary<string, string>();
}

/// <summary>One rendered frame, numbered within the shot.</summary>
public sealed record RenderedFrame(int FrameIndex, RgbImage Image);

/// <summary>Progress of a render: <paramref name="Completed"/> of <paramref name="Total"/> units (steps × frames).</summary>
public readonly record struct RenderProgress(int Completed, int Total);

/// <summary>An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.</summary>
public sealed class RgbImage
{
    public RgbImage(int width, int height, byte[] pixels)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (pixels.Length != width * height * 3)
        {
            throw new ArgumentException($"Expected {width * height * 3} bytes for {width}x{height} RGB, got {pixels.Length}.", nameof(pixels));
        }

        Width = width;
        Height = height;
        Pixels = pixels;
    }

    public RgbImage(int width, int height)
        : this(width, height, new byte[width * height * 3])
    {
    }

    public int Width { get; }

    public int Height { get; }

    public byte[] Pixels { get; }
}
