using System.Globalization;
using ProgrammableFilm.Engine.Procedural;
using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>How a <see cref="DiffusionEngine"/> finds its model and uses the CPU.</summary>
public sealed record DiffusionEngineOptions
{
    /// <summary>
    /// The weights file. Default: <c>models/pf-scene-v3.safetensors</c> found by walking up from
    /// <see cref="AppContext.BaseDirectory"/> (so a <c>models</c> folder copied next to the binaries works too).
    /// </summary>
    public string? ModelPath { get; init; }

    /// <summary>Compute threads (0 = all cores). Frames are byte-identical for every value.</summary>
    public int Threads { get; init; }

    /// <summary>Frames of a segment sampled together (network batch = 2 × this with guidance).</summary>
    public int MaxFrameBatch { get; init; } = 8;

    /// <summary>Noise correlation across a segment (docs/model.md: 0.9).</summary>
    public double SegmentNoiseCorrelation { get; init; } = 0.9;

    /// <summary>The prompt vocabulary (default <see cref="SceneVocabulary.Default"/>).</summary>
    public SceneVocabulary? Vocabulary { get; init; }
}

/// <summary>
/// The <c>diffusion</c> engine: runs the project's pf-scene U-Net (docs/model.md) through an <see cref="IDiffusionSampler"/>,
/// natively on the CPU (<see cref="DiffusionModel"/>, the default) or on TorchSharp (<c>ProgrammableFilm.Engine.Torch</c>). Keyframe tasks
/// render each frame in keyframe mode from noise (seed, frame); segment tasks render their frames in in-between mode,
/// conditioned on the surrounding keyframes, with noise correlated across the segment, batched through the network.
/// Frames come out at the model's native 64×64; assembly upscales. The model is loaded once, on first use (or by
/// <see cref="LoadModel"/>), and shared by all renders, which run one at a time on it.
/// </summary>
public sealed class DiffusionEngine : IRenderEngine, IDisposable
{
    private readonly DiffusionEngineOptions _options;
    private readonly Lazy<IDiffusionSampler> _model;
    private readonly SceneVocabulary _vocabulary;

    /// <summary>Creates the engine; the weights are loaded lazily on the first render.</summary>
    public DiffusionEngine(DiffusionEngineOptions? options = null)
    {
        _options = options ?? new DiffusionEngineOptions();
        _vocabulary = _options.Vocabulary ?? SceneVocabulary.Default;
        _model = new Lazy<IDiffusionSampler>(
            () => DiffusionModel.Load(
                _options.ModelPath ?? ModelLocator.FindRequired(),
                new DiffusionModelOptions { Threads = _options.Threads, MaxFrameBatch = _options.MaxFrameBatch }),
            LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Creates the engine around an already loaded model, native or not (not disposed by the engine).</summary>
    public DiffusionEngine(IDiffusionSampler model, DiffusionEngineOptions? options = null)
    {
        _options = options ?? new DiffusionEngineOptions();
        _vocabulary = _options.Vocabulary ?? SceneVocabulary.Default;
        _model = new Lazy<IDiffusionSampler>(model);
        OwnsModel = false;
    }

    /// <summary>
    /// Creates the engine around a model that <paramref name="load"/> creates on the first render (or
    /// <see cref="LoadModel"/>) and the engine disposes: how another implementation (TorchSharp) plugs in. Only the
    /// sampler comes from <paramref name="load"/>; of <paramref name="options"/>, the engine uses the vocabulary and the
    /// segment noise correlation.
    /// </summary>
    public DiffusionEngine(Func<IDiffusionSampler> load, DiffusionEngineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(load);
        _options = options ?? new DiffusionEngineOptions();
        _vocabulary = _options.Vocabulary ?? SceneVocabulary.Default;
        _model = new Lazy<IDiffusionSampler>(load, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <inheritdoc/>
    public string Name => "diffusion";

    private bool OwnsModel { get; } = true;

    /// <summary>Loads the weights now (e.g. at worker start-up) and returns the model.</summary>
    public IDiffusionSampler LoadModel() => _model.Value;

    /// <inheritdoc/>
    public Task<RenderResult> RenderAsync(RenderRequest request, IProgress<RenderProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Task.Run(() => Render(request, progress, cancellationToken), cancellationToken);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (OwnsModel && _model.IsValueCreated)
        {
            _model.Value.Dispose();
        }
    }

    private RenderResult Render(RenderRequest request, IProgress<RenderProgress>? progress, CancellationToken cancellationToken)
    {
        if (request.FrameIndices.Count == 0)
        {
            throw new ArgumentException("No frames requested.", nameof(request));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(request.TotalFrames, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(request.Steps, 1);
        var model = _model.Value;
        int size = model.Config.ImageSize;
        int plane = 3 * size * size;

        var (parsed, slots, unknown) = Conditioning(request.Prompt, model);

        // The blocking comes from the same plan the procedural engine draws: a preview and a diffusion render of one
        // shot and seed put the object in the same place.
        var scene = SceneDescription.Create(parsed, request.Seed, _vocabulary);
        bool segment = request.StartKeyframe is not null && request.EndKeyframe is not null;
        float[]? keyA = segment ? ImageConversion.ToTensor(request.StartKeyframe!.Image, size) : null;
        float[]? keyB = segment ? ImageConversion.ToTensor(request.EndKeyframe!.Image, size) : null;
        float[]? init = request.InitImage is null ? null : ImageConversion.ToTensor(request.InitImage, size);
        float[]? shared = null;
        if (segment)
        {
            shared = new float[plane];
            GaussianNoise.Fill(request.Seed, request.StartKeyframe!.FrameIndex, shared);
        }

        float sqrtRho = (float)Math.Sqrt(_options.SegmentNoiseCorrelation);
        float sqrtOwn = (float)Math.Sqrt(1 - _options.SegmentNoiseCorrelation);
        var frames = new List<FrameSpec>(request.FrameIndices.Count);
        foreach (int f in request.FrameIndices)
        {
            var noise = new float[plane];
            GaussianNoise.Fill(request.Seed, f, noise);
            double shotPosition = request.TotalFrames > 1 ? (double)f / (request.TotalFrames - 1) : 0;
            float s = (float)shotPosition;
            float[]? layout = model.Config.Layout ? ObjectBox(scene, shotPosition, size) : null;
            if (segment)
            {
                // noise_f = sqrt(rho) shared(seed, a) + sqrt(1 - rho) own(seed, f): neighbouring frames start close together.
                for (int j = 0; j < plane; j++)
                {
                    noise[j] = (sqrtRho * shared![j]) + (sqrtOwn * noise[j]);
                }

                int a = request.StartKeyframe!.FrameIndex, b = request.EndKeyframe!.FrameIndex;
                float alpha = b != a ? (float)((double)(f - a) / (b - a)) : 0f;
                frames.Add(new FrameSpec(noise, new UNetConditioning(0, slots[0], slots[1], slots[2], slots[3], s, alpha, 1f), keyA, keyB, init, layout));
            }
            else
            {
                frames.Add(new FrameSpec(noise, new UNetConditioning(0, slots[0], slots[1], slots[2], slots[3], s, 0f, 0f), null, null, init, layout));
            }
        }

        var settings = new SamplerSettings(request.Steps, (float)request.Guidance, (float)request.InitStrength, request.MaxFrameBatch);
        int activeSteps = init is null ? request.Steps : Math.Min(request.Steps, (int)Math.Ceiling(request.InitStrength * request.Steps));
        int total = Math.Max(activeSteps, 0) * frames.Count;
        int completed = 0;
        progress?.Report(new RenderProgress(0, total));
        var x0 = model.Sample(
            frames,
            settings,
            done =>
            {
                completed += done;
                progress?.Report(new RenderProgress(completed, total));
            },
            cancellationToken);

        var rendered = new List<RenderedFrame>(frames.Count);
        for (int i = 0; i < frames.Count; i++)
        {
            rendered.Add(new RenderedFrame(request.FrameIndices[i], ImageConversion.ToImage(x0[i], size)));
        }

        var facts = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["engine"] = Name,
            ["model"] = model.ModelId,
            ["weights_sha256"] = model.WeightsSha256,
            ["native_resolution"] = $"{size}x{size}",
            ["upscaled_at_assembly"] = request.Width != size || request.Height != size ? "true" : "false",
            ["sampler"] = "ddim",
            ["eta"] = "0",
            ["steps"] = request.Steps.ToString(CultureInfo.InvariantCulture),
            ["guidance"] = request.Guidance.ToString("R", CultureInfo.InvariantCulture),
            ["mode"] = segment ? "inbetween" : "keyframe",
            ["noise"] = "philox4x32-10+box-muller(seed,frame)",
            ["conditioning"] = string.Join(',', slots),
        };
        foreach (var (key, value) in model.ImplementationFacts)
        {
            facts[key] = value;
        }

        if (model.Config.Layout)
        {
            facts["layout"] = "object box planned from the prompt's motion and the seed (scene.* facts)";
            foreach (var (key, value) in scene.ToFacts())
            {
                facts[key] = value;
            }
        }

        if (segment)
        {
            facts["noise_correlation"] = _options.SegmentNoiseCorrelation.ToString("R", CultureInfo.InvariantCulture);
            facts["keyframes"] = $"{request.StartKeyframe!.FrameIndex},{request.EndKeyframe!.FrameIndex}";
        }

        if (init is not null)
        {
            facts["init_strength"] = request.InitStrength.ToString("R", CultureInfo.InvariantCulture);
        }

        return new RenderResult { Frames = rendered, UnknownWords = unknown, Facts = facts };
    }

    /// <summary>Model indices per slot from the prompt; names the model's tables cannot hold count as unknown words.</summary>
    private static float[] ObjectBox(SceneDescription scene, double shotPosition, int size)
    {
        var coverage = ObjectLayout.RenderBox(scene, shotPosition, size, size);
        var plane = new float[coverage.Length];
        for (int i = 0; i < plane.Length; i++)
        {
            plane[i] = coverage[i] / 255f;
        }

        return plane;
    }

    private (ParsedPrompt Parsed, int[] Slots, IReadOnlyList<string> Unknown) Conditioning(string prompt, IDiffusionSampler model)
    {
        var parsed = PromptParser.Parse(prompt, _vocabulary);
        var slots = parsed.ToModelIndices(_vocabulary);
        var unknown = new List<string>(parsed.UnknownWords);
        for (int i = 0; i < slots.Length; i++)
        {
            if (slots[i] >= model.VocabRows[i])
            {
                unknown.Add(parsed.Get((SceneSlot)i)!);
                slots[i] = 0;
            }
        }

        return (parsed, slots, unknown);
    }
}
