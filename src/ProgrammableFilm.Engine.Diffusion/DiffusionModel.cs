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

    /// <summary>
    /// Images one thread pushes through the network per pass in image-parallel mode (default 1: each image's activations
    /// stay in that core's L2 cache for the whole pass).
    /// </summary>
    public int ImagesPerPass { get; init; } = 1;
}

/// <summary>One frame to sample: its initial noise, conditioning and optional keyframes / init image (CHW floats in [-1, 1]).</summary>
/// <param name="Noise">Initial Gaussian noise, 3 × S × S.</param>
/// <param name="Conditioning">Prompt slots, shot position, alpha and mode (the timestep field is ignored).</param>
/// <param name="KeyframeA">Keyframe A (in-between mode) or null for zeros.</param>
/// <param name="KeyframeB">Keyframe B (in-between mode) or null for zeros.</param>
/// <param name="Init">Init image or null.</param>
/// <param name="Layout">
/// The object's planned box, S × S coverage in [0, 1] (<see cref="Procedural.ObjectLayout.RenderBox"/> / 255), for models
/// with a layout input; null for zeros (no plan). The unconditional half of guidance never gets it.
/// </param>
public sealed record FrameSpec(float[] Noise, UNetConditioning Conditioning, float[]? KeyframeA = null, float[]? KeyframeB = null, float[]? Init = null, float[]? Layout = null);

/// <summary>DDIM settings.</summary>
/// <param name="Steps">Sampler steps.</param>
/// <param name="Guidance">Classifier-free guidance scale g: v = v_u + g (v_c - v_u).</param>
/// <param name="InitStrength">Strength σ in (0, 1] when frames carry an init image.</param>
public sealed record SamplerSettings(int Steps = 20, float Guidance = 3f, float InitStrength = 0.6f, int? MaxFrameBatch = null);

/// <summary>
/// The loaded pf-scene model: U-Net, schedule and DDIM sampler (docs/model.md). Loads the weights once; sampling is
/// serialised, allocation-free after the first step, and parallel in one of two ways that give the same bits: when a
/// network batch has at least as many images as threads, each thread runs whole forward passes on its own fixed,
/// contiguous share of the images with its own workspace (no synchronisation per operator, activations stay in the
/// core's cache); otherwise every operator splits its output tiles over the threads.
/// </summary>
public sealed class DiffusionModel : IDiffusionSampler
{
    private readonly UNet _net;
    private readonly UNetWorkspace _workspace;
    private readonly UNetWorkspace[] _threadWorkspaces;
    private readonly Parallelism _parallel;
    private readonly Parallelism _serial = new(1);
    private readonly int _imagesPerPass;
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
        _imagesPerPass = Math.Max(1, options.ImagesPerPass);
        _threadWorkspaces = [.. Enumerable.Range(0, _parallel.Threads).Select(_ => new UNetWorkspace(_net.Config, _imagesPerPass, Isa))];
        _alphaBar = CosineSchedule.AlphaBar(_net.Config.T);
    }

    /// <summary>The architecture read from the weights file.</summary>
    public UNetConfig Config => _net.Config;

    /// <summary><c>{name}-v{version}</c>, e.g. <c>pf-scene-v3</c>.</summary>
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

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, string> ImplementationFacts => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["implementation"] = "native",
        ["device"] = "cpu",
        ["precision"] = "fp32",
        ["isa"] = Isa.ToString(),
    };

    /// <summary>Loads weights and builds the network from the file's <c>config</c> metadata.</summary>
    public static DiffusionModel Load(string path, DiffusionModelOptions? options = null) => new(path, options ?? new DiffusionModelOptions());

    /// <inheritdoc/>
    /// <remarks>
    /// Frames go through the network <see cref="MaxFrameBatch"/> at a time; every row is independent, so batching does
    /// not change the result.
    /// </remarks>
    public float[][] Sample(IReadOnlyList<FrameSpec> frames, SamplerSettings settings, Action<int>? onStep, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.Steps, 1);
        var results = new float[frames.Count][];
        lock (_gate)
        {
            // A smaller batch (an out-of-memory retry) needs less memory and gives the same bits.
            int batch = Math.Clamp(settings.MaxFrameBatch ?? MaxFrameBatch, 1, MaxFrameBatch);
            for (int start = 0; start < frames.Count; start += batch)
            {
                int count = Math.Min(batch, frames.Count - start);
                SampleBatch(frames, start, count, settings, results, onStep, cancellationToken);
            }
        }

        return results;
    }

    /// <summary>
    /// One raw network evaluation (for parity tests and benchmarks): rows of (x_t, A, B, layout) and conditioning → v.
    /// An empty <paramref name="layout"/> means zeros.
    /// </summary>
    internal float[] Forward(ReadOnlySpan<float> xt, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> layout, ReadOnlySpan<UNetConditioning> cond)
    {
        int n = cond.Length;
        int plane = 3 * ImageSize * ImageSize;
        int layoutPlane = ImageSize * ImageSize;
        var x = new float[n][];
        var ka = new float[n][];
        var kb = new float[n][];
        var boxes = new float[]?[n];
        var v = new float[n][];
        for (int i = 0; i < n; i++)
        {
            x[i] = xt.Slice(i * plane, plane).ToArray();
            ka[i] = a.Slice(i * plane, plane).ToArray();
            kb[i] = b.Slice(i * plane, plane).ToArray();
            boxes[i] = layout.IsEmpty ? null : layout.Slice(i * layoutPlane, layoutPlane).ToArray();
            v[i] = new float[plane];
        }

        lock (_gate)
        {
            Evaluate(n, x, ka, kb, boxes, cond.ToArray(), v);
        }

        return [.. v.SelectMany(r => r)];
    }

    /// <summary>
    /// v[r] = UNet(x[r], a[r], b[r], layout[r], cond[r]) for rows 0..rows-1 (null keyframes and layouts are zeros). Every
    /// row is computed by the same serial code whichever thread runs it, so the result does not depend on the thread
    /// count or the mode.
    /// </summary>
    internal void Evaluate(int rows, float[][] x, float[]?[] a, float[]?[] b, float[]?[] layout, UNetConditioning[] cond, float[][] v)
    {
        int threads = _parallel.Threads;
        if (threads > 1 && rows >= threads)
        {
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                int start = (int)((long)t * rows / threads), end = (int)((long)(t + 1) * rows / threads);
                Pass(_serial, _threadWorkspaces[t], start, end, x, a, b, layout, cond, v);
            });
        }
        else if (threads == 1)
        {
            Pass(_serial, _threadWorkspaces[0], 0, rows, x, a, b, layout, cond, v);
        }
        else
        {
            Pass(_parallel, _workspace, 0, rows, x, a, b, layout, cond, v);
        }
    }

    private unsafe void Pass(Parallelism parallel, UNetWorkspace ws, int start, int end, float[][] x, float[]?[] a, float[]?[] b, float[]?[] layout, UNetConditioning[] cond, float[][] v)
    {
        int plane = 3 * ImageSize * ImageSize;
        int layoutPlane = ImageSize * ImageSize;
        var input = ws.Input;
        for (int r0 = start; r0 < end; r0 += ws.Capacity)
        {
            int n = Math.Min(ws.Capacity, end - r0);
            for (int i = 0; i < n; i++)
            {
                x[r0 + i].AsSpan(0, plane).CopyTo(new Span<float>(input.Channel(i, 0), plane));
                CopyOrZero(a[r0 + i], input.Channel(i, 3), plane);
                CopyOrZero(b[r0 + i], input.Channel(i, 6), plane);
                if (Config.Layout)
                {
                    CopyOrZero(layout[r0 + i], input.Channel(i, 9), layoutPlane);
                }
            }

            _net.Forward(parallel, ws, n, cond.AsSpan(r0, n));
            for (int i = 0; i < n; i++)
            {
                new ReadOnlySpan<float>(ws.Output.Image(i), plane).CopyTo(v[r0 + i]);
            }
        }
    }

    public void Dispose()
    {
        foreach (var ws in _threadWorkspaces)
        {
            ws.Dispose();
        }

        _workspace.Dispose();
        _net.Dispose();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SampleBatch(
        IReadOnlyList<FrameSpec> frames, int start, int count, SamplerSettings settings, float[][] results,
        Action<int>? onStep, CancellationToken cancellationToken)
    {
        int steps = settings.Steps;
        int plane = 3 * ImageSize * ImageSize;
        var ts = CosineSchedule.Timesteps(steps, Config.T);
        int rows = 2 * count;
        var cond = new UNetConditioning[rows];
        var x = new float[count][];
        var xRows = new float[rows][];
        var aRows = new float[]?[rows];
        var bRows = new float[]?[rows];
        var layoutRows = new float[]?[rows];
        var v = new float[rows][];
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

            // Conditional rows first, unconditional (all slots 0, no layout) second; x, A, B, s, alpha, m shared.
            cond[r] = f.Conditioning;
            cond[count + r] = f.Conditioning with { Background = 0, Object = 0, Colour = 0, Motion = 0 };
            xRows[r] = xRows[count + r] = x[r];
            aRows[r] = aRows[count + r] = f.KeyframeA;
            bRows[r] = bRows[count + r] = f.KeyframeB;
            layoutRows[r] = f.Layout;
            v[r] = new float[plane];
            v[count + r] = new float[plane];
            results[start + r] = hasInit ? (float[])f.Init!.Clone() : (float[])x[r].Clone();
        }

        float g = settings.Guidance;
        for (int i = i0; i < steps; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int t = ts[i];
            float aT = _alphaBar[t];
            float aPrev = i + 1 < steps ? _alphaBar[ts[i + 1]] : 1f;
            for (int r = 0; r < rows; r++)
            {
                cond[r] = cond[r] with { Timestep = t };
            }

            Evaluate(rows, xRows, aRows, bRows, layoutRows, cond, v);

            float sa = MathF.Sqrt(aT), s1a = MathF.Sqrt(1f - aT);
            float sp = MathF.Sqrt(aPrev), s1p = MathF.Sqrt(1f - aPrev);
            for (int r = 0; r < count; r++)
            {
                var vc = v[r];
                var vu = v[count + r];
                var xr = x[r];
                var x0 = results[start + r];
                for (int j = 0; j < plane; j++)
                {
                    float vg = vu[j] + (g * (vc[j] - vu[j]));
                    float p = Math.Clamp((sa * xr[j]) - (s1a * vg), -1f, 1f);
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
