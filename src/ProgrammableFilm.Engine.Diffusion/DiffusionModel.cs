using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>Options for loading a <see cref="DiffusionModel"/>.</summary>
public sealed record DiffusionModelOptions
{
    /// <summary>Compute threads (0 = all cores). Results are byte-identical for every value.</summary>
    public int Threads { get; init; }

    /// <summary>Frames evaluated together in one network pass (the network batch is twice this, for guidance).</summary>
    public int MaxFrameBatch { get; init; } = 8;

    /// <summary>Micro-kernel to use (default: the best the CPU supports).</summary>
    public GemmIsa? Isa { get; init; }
}

/// <summary>One frame to sample: its initial noise, conditioning and optional keyframes / init image (CHW floats in [-1, 1]).</summary>
/// <param name="Noise">Initial Gaussian noise, 3 × S × S.</param>
/// <param name="Conditioning">Prompt slots, shot position, alpha and mode (the timestep field is ignored).</param>
/// <param name="KeyframeA">Keyframe A (in-between mode) or null for zeros.</param>
/// <param name="KeyframeB">Keyframe B (in-between mode) or null for zeros.</param>
/// <param name="Init">Init image or null.</param>
public sealed record FrameSpec(float[] Noise, UNetConditioning Conditioning, float[]? KeyframeA = null, float[]? KeyframeB = null, float[]? Init = null);

/// <summary>DDIM settings.</summary>
/// <param name="Steps">Sampler steps.</param>
/// <param name="Guidance">Classifier-free guidance scale g: v = v_u + g (v_c - v_u).</param>
/// <param name="InitStrength">Strength σ in (0, 1] when frames carry an init image.</param>
public sealed record SamplerSettings(int Steps = 20, float Guidance = 3f, float InitStrength = 0.6f);

/// <summary>
/// The loaded pf-scene model: U-Net, schedule and DDIM sampler (docs/model.md). Loads the weights once; sampling is
/// serialised on one preallocated workspace and parallelised inside each operator.
/// </summary>
public sealed class DiffusionModel : IDisposable
{
    private readonly UNet _net;
    private readonly UNetWorkspace _workspace;
    private readonly Parallelism _parallel;
    private readonly float[] _alphaBar;
    private readonly Lock _gate = new();

    private DiffusionModel(string path, DiffusionModelOptions options)
    {
        WeightsPath = Path.GetFullPath(path);
        using (var stream = File.OpenRead(path))
        {
            WeightsSha256 = Convert.ToHexStringLower(SHA256.HashData(stream));
        }

        using var file = SafetensorsFile.Open(path);
        Isa = options.Isa ?? GemmKernels.Best;
        _net = new UNet(file, Isa);
        MaxFrameBatch = Math.Max(1, options.MaxFrameBatch);
        _workspace = new UNetWorkspace(_net.Config, 2 * MaxFrameBatch, Isa);
        _parallel = new Parallelism(options.Threads);
        _alphaBar = CosineSchedule.AlphaBar(_net.Config.T);
    }

    /// <summary>The architecture read from the weights file.</summary>
    public UNetConfig Config => _net.Config;

    /// <summary><c>{name}-v{version}</c>, e.g. <c>pf-scene-v1</c>.</summary>
    public string ModelId => $"{Config.Name}-v{Config.Version}";

    /// <summary>Full path of the weights file.</summary>
    public string WeightsPath { get; }

    /// <summary>Lower-case hex SHA-256 of the weights file.</summary>
    public string WeightsSha256 { get; }

    /// <summary>The micro-kernel in use.</summary>
    public GemmIsa Isa { get; }

    /// <summary>Frames per network pass.</summary>
    public int MaxFrameBatch { get; }

    /// <summary>Compute threads.</summary>
    public int Threads => _parallel.Threads;

    /// <summary>Native image size.</summary>
    public int ImageSize => Config.ImageSize;

    /// <summary>Rows of each prompt embedding table (vocabulary size + 1), in slot order.</summary>
    public IReadOnlyList<int> VocabRows => _net.VocabRows;

    /// <summary>FLOPs of one U-Net forward of one image.</summary>
    public long FlopsPerImage => _net.FlopsPerImage;

    /// <summary>alpha_bar[t] as float32.</summary>
    public IReadOnlyList<float> AlphaBar => _alphaBar;

    /// <summary>Loads weights and builds the network from the file's <c>config</c> metadata.</summary>
    public static DiffusionModel Load(string path, DiffusionModelOptions? options = null) => new(path, options ?? new DiffusionModelOptions());

    /// <summary>
    /// Samples every frame (DDIM, eta 0, guidance with conditional and unconditional rows in one batch) and returns the
    /// final x0 of each, 3 × S × S in [-1, 1]. Frames go through the network <see cref="MaxFrameBatch"/> at a time; every
    /// row is independent, so batching does not change the result. <paramref name="onStep"/> gets the number of frames
    /// that completed one more step; cancellation is checked before every step.
    /// </summary>
    public float[][] Sample(IReadOnlyList<FrameSpec> frames, SamplerSettings settings, Action<int>? onStep, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.Steps, 1);
        var results = new float[frames.Count][];
        lock (_gate)
        {
            for (int start = 0; start < frames.Count; start += MaxFrameBatch)
            {
                int count = Math.Min(MaxFrameBatch, frames.Count - start);
                SampleBatch(frames, start, count, settings, results, onStep, cancellationToken);
            }
        }

        return results;
    }

    /// <summary>One raw network evaluation (for parity tests and benchmarks): rows of (x_t, A, B) and conditioning → v.</summary>
    internal unsafe float[] Forward(ReadOnlySpan<float> xt, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<UNetConditioning> cond)
    {
        int n = cond.Length;
        int plane = 3 * ImageSize * ImageSize;
        var v = new float[n * plane];
        lock (_gate)
        {
            var input = _workspace.Input;
            for (int i = 0; i < n; i++)
            {
                xt.Slice(i * plane, plane).CopyTo(new Span<float>(input.Channel(i, 0), plane));
                a.Slice(i * plane, plane).CopyTo(new Span<float>(input.Channel(i, 3), plane));
                b.Slice(i * plane, plane).CopyTo(new Span<float>(input.Channel(i, 6), plane));
            }

            _net.Forward(_parallel, _workspace, n, cond);
            new ReadOnlySpan<float>(_workspace.Output.Data, n * plane).CopyTo(v);
        }

        return v;
    }

    public void Dispose()
    {
        _workspace.Dispose();
        _net.Dispose();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private unsafe void SampleBatch(
        IReadOnlyList<FrameSpec> frames, int start, int count, SamplerSettings settings, float[][] results,
        Action<int>? onStep, CancellationToken cancellationToken)
    {
        int steps = settings.Steps;
        int plane = 3 * ImageSize * ImageSize;
        var ts = CosineSchedule.Timesteps(steps, Config.T);
        var input = _workspace.Input;
        var cond = new UNetConditioning[2 * count];
        var x = new float[count][];
        bool hasInit = frames[start].Init is not null;
        int i0 = hasInit ? steps - (int)Math.Ceiling(settings.InitStrength * (double)steps) : 0;
        i0 = Math.Clamp(i0, 0, steps);

        for (int r = 0; r < count; r++)
        {
            var f = frames[start + r];
            if (f.Noise.Length != plane || (f.Init is not null) != hasInit)
            {
                throw new ArgumentException("Every frame needs 3×S×S noise, and all frames of a batch an init image or none.");
            }

            // Conditional rows first, unconditional (all slots 0) second; A, B, s, alpha, m shared.
            cond[r] = f.Conditioning;
            cond[count + r] = f.Conditioning with { Background = 0, Object = 0, Colour = 0, Motion = 0 };
            foreach (int row in (int[])[r, count + r])
            {
                CopyOrZero(f.KeyframeA, input.Channel(row, 3), plane);
                CopyOrZero(f.KeyframeB, input.Channel(row, 6), plane);
            }

            x[r] = (float[])f.Noise.Clone();
            if (hasInit && i0 < steps)
            {
                float a0 = _alphaBar[ts[i0]];
                float sa = MathF.Sqrt(a0), s1a = MathF.Sqrt(1f - a0);
                for (int j = 0; j < plane; j++)
                {
                    x[r][j] = (sa * f.Init![j]) + (s1a * f.Noise[j]);
                }
            }

            results[start + r] = hasInit ? (float[])f.Init!.Clone() : (float[])x[r].Clone();
        }

        float g = settings.Guidance;
        for (int i = i0; i < steps; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int t = ts[i];
            float aT = _alphaBar[t];
            float aPrev = i + 1 < steps ? _alphaBar[ts[i + 1]] : 1f;
            for (int r = 0; r < 2 * count; r++)
            {
                cond[r] = cond[r] with { Timestep = t };
                x[r % count].AsSpan().CopyTo(new Span<float>(input.Channel(r, 0), plane));
            }

            _net.Forward(_parallel, _workspace, 2 * count, cond);

            float sa = MathF.Sqrt(aT), s1a = MathF.Sqrt(1f - aT);
            float sp = MathF.Sqrt(aPrev), s1p = MathF.Sqrt(1f - aPrev);
            for (int r = 0; r < count; r++)
            {
                float* vc = _workspace.Output.Image(r);
                float* vu = _workspace.Output.Image(count + r);
                var xr = x[r];
                var x0 = results[start + r];
                for (int j = 0; j < plane; j++)
                {
                    float v = vu[j] + (g * (vc[j] - vu[j]));
                    float p = Math.Clamp((sa * xr[j]) - (s1a * v), -1f, 1f);
                    float eps = (xr[j] - (sa * p)) / s1a;
                    x0[j] = p;
                    xr[j] = (sp * p) + (s1p * eps);
                }
            }

            onStep?.Invoke(count);
        }
    }

    private static unsafe void CopyOrZero(float[]? src, float* dst, int count)
    {
        var d = new Span<float>(dst, count);
        if (src is null)
        {
            d.Clear();
        }
        else
        {
            src.AsSpan(0, count).CopyTo(d);
        }
    }
}
