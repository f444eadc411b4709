using System.Security.Cryptography;
using ProgrammableFilm.Engine.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace ProgrammableFilm.Engine.Torch;

/// <summary>
/// The pf-scene model on TorchSharp: <see cref="TorchUNet"/> (a mirror of tools/train/model.py) with weights read from
/// the same safetensors file the native engine reads, and the DDIM sampler of docs/model.md run on the device. The
/// initial noise, conditioning and layout come in as <see cref="FrameSpec"/>s made by <see cref="DiffusionEngine"/> on
/// the CPU (Philox noise), and are copied to the device; the network runs in the device's precision, the DDIM update in
/// float32. Sampling is serialised; cancellation is checked before every step.
/// </summary>
public sealed class TorchDiffusionModel : IDiffusionSampler
{
    private readonly TorchUNet _net;
    private readonly float[] _alphaBar;
    private readonly Device _device;
    private readonly ScalarType _dtype;
    private readonly Lock _gate = new();

    private TorchDiffusionModel(string path, TorchEngineOptions options)
    {
        DeviceInfo = TorchDevices.Resolve(options.Device, options.Precision);
        if (!DeviceInfo.IsCuda)
        {
            // LibTorch's default is one thread per core, already shared with other work on a worker; say it explicitly.
            torch.set_num_threads(options.Threads > 0 ? options.Threads : Environment.ProcessorCount);
        }

        Threads = torch.get_num_threads();
        WeightsPath = Path.GetFullPath(path);
        using (var stream = File.OpenRead(path))
        {
            WeightsSha256 = Convert.ToHexStringLower(SHA256.HashData(stream));
        }

        using var file = SafetensorsFile.Open(path);
        string configJson = file.Metadata.TryGetValue("config", out var c) ? c : throw new InvalidDataException($"{path}: no 'config' metadata.");
        var config = UNetConfig.Parse(configJson);
        if (config.Channels.Count != 3)
        {
            throw new NotSupportedException("Only three trunk levels are supported.");
        }

        string[] slots = ["background", "object", "colour", "motion"];
        VocabRows = [.. slots.Select(s => (int)file.GetEntry($"prompt_emb.{s}.weight").Shape[0])];
        _net = new TorchUNet(config, VocabRows);
        _net.LoadWeights(file);
        _net.eval();
        _device = torch.device(DeviceInfo.Device);
        _dtype = TorchDevices.DType(DeviceInfo.Precision);
        _net.to(_device);
        _net.to(_dtype);
        MaxFrameBatch = Math.Max(1, options.MaxFrameBatch);
        _alphaBar = CosineSchedule.AlphaBar(config.T);
    }

    /// <inheritdoc/>
    public UNetConfig Config => _net.Config;

    /// <inheritdoc/>
    public string ModelId => $"{Config.Name}-v{Config.Version}";

    /// <summary>Full path of the weights file.</summary>
    public string WeightsPath { get; }

    /// <inheritdoc/>
    public string WeightsSha256 { get; }

    /// <inheritdoc/>
    public IReadOnlyList<int> VocabRows { get; }

    /// <summary>The device and precision in use.</summary>
    public TorchDeviceInfo DeviceInfo { get; }

    /// <summary>LibTorch intra-op threads.</summary>
    public int Threads { get; }

    /// <summary>Frames per network pass.</summary>
    public int MaxFrameBatch { get; }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, string> ImplementationFacts => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["implementation"] = "torch",
        ["device"] = DeviceInfo.Device,
        ["device_name"] = DeviceInfo.Name,
        ["precision"] = DeviceInfo.Precision,
        ["torchsharp"] = typeof(torch).Assembly.GetName().Version?.ToString(3) ?? "?",
    };

    /// <summary>Loads the weights and builds the network from the file's <c>config</c> metadata on the chosen device.</summary>
    public static TorchDiffusionModel Load(string path, TorchEngineOptions? options = null) => new(path, options ?? new TorchEngineOptions());

    /// <inheritdoc/>
    public float[][] Sample(IReadOnlyList<FrameSpec> frames, SamplerSettings settings, Action<int>? onStep, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.Steps, 1);
        var results = new float[frames.Count][];
        lock (_gate)
        {
            using var inference = torch.inference_mode();
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
    /// One raw network evaluation (parity tests, benchmarks): rows of (x_t, A, B, layout) and conditioning → v, all
    /// float32 on the host. An empty <paramref name="layout"/> means zeros.
    /// </summary>
    public float[] Forward(float[] xt, float[] a, float[] b, float[] layout, IReadOnlyList<UNetConditioning> cond)
    {
        int n = cond.Count, s = Config.ImageSize;
        lock (_gate)
        {
            using var inference = torch.inference_mode();
            using var scope = torch.NewDisposeScope();
            var lay = layout.Length == 0 ? zeros(n, 1, s, s, dtype: _dtype, device: _device) : Image(layout, n, 1);
            var v = _net.Forward(
                Image(xt, n, 3), Image(a, n, 3), Image(b, n, 3),
                tensor(cond.Select(c => (long)c.Timestep).ToArray(), device: _device),
                Slots(cond), Floats(cond.Select(c => c.S)), Floats(cond.Select(c => c.Alpha)), Floats(cond.Select(c => c.Mode)), lay);
            return v.to(float32).cpu().data<float>().ToArray();
        }
    }

    /// <summary>The network's embedding (time + prompt + placement) for parity tests.</summary>
    internal float[] Embedding(IReadOnlyList<UNetConditioning> cond)
    {
        lock (_gate)
        {
            using var inference = torch.inference_mode();
            using var scope = torch.NewDisposeScope();
            var e = _net.Embed(
                tensor(cond.Select(c => (long)c.Timestep).ToArray(), device: _device),
                Slots(cond), Floats(cond.Select(c => c.S)), Floats(cond.Select(c => c.Alpha)), Floats(cond.Select(c => c.Mode)));
            return e.to(float32).cpu().data<float>().ToArray();
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _net.Dispose();

    private void SampleBatch(
        IReadOnlyList<FrameSpec> frames, int start, int count, SamplerSettings settings, float[][] results,
        Action<int>? onStep, CancellationToken cancellationToken)
    {
        int steps = settings.Steps, size = Config.ImageSize, plane = 3 * size * size, layoutPlane = size * size;
        var ts = CosineSchedule.Timesteps(steps, Config.T);
        bool hasInit = frames[start].Init is not null;
        int i0 = Math.Clamp(hasInit ? steps - (int)Math.Ceiling(settings.InitStrength * (double)steps) : 0, 0, steps);

        // Host-side inputs: the same arithmetic as the native sampler up to the first network call.
        var x = new float[count * plane];
        var a = new float[count * plane];
        var b = new float[count * plane];
        var layout = new float[2 * count * layoutPlane]; // conditional rows' plans, then zeros for the unconditional rows
        var cond = new UNetConditioning[2 * count];
        for (int r = 0; r < count; r++)
        {
            var f = frames[start + r];
            if (f.Noise.Length != plane || (f.Init is not null) != hasInit)
            {
                throw new ArgumentException("Every frame needs 3×S×S noise, and all frames of a batch an init image or none.");
            }

            var xr = x.AsSpan(r * plane, plane);
            f.Noise.CopyTo(xr);
            if (hasInit && i0 < steps)
            {
                float a0 = _alphaBar[ts[i0]];
                float sa0 = MathF.Sqrt(a0), s1a0 = MathF.Sqrt(1f - a0);
                for (int j = 0; j < plane; j++)
                {
                    xr[j] = (sa0 * f.Init![j]) + (s1a0 * f.Noise[j]);
                }
            }

            f.KeyframeA?.CopyTo(a.AsSpan(r * plane, plane));
            f.KeyframeB?.CopyTo(b.AsSpan(r * plane, plane));
            f.Layout?.CopyTo(layout.AsSpan(r * layoutPlane, layoutPlane));
            cond[r] = f.Conditioning;
            cond[count + r] = f.Conditioning with { Background = 0, Object = 0, Colour = 0, Motion = 0 };
            results[start + r] = hasInit ? (float[])f.Init!.Clone() : xr.ToArray();
        }

        if (i0 >= steps)
        {
            return;
        }

        using var scope = torch.NewDisposeScope();
        var xt = tensor(x, [count, 3, size, size], dtype: float32).to(_device);
        var a2 = Image([.. a, .. a], 2 * count, 3);
        var b2 = Image([.. b, .. b], 2 * count, 3);
        var layout2 = Image(layout, 2 * count, 1);
        var slots2 = Slots(cond);
        var s2 = Floats(cond.Select(c => c.S));
        var alpha2 = Floats(cond.Select(c => c.Alpha));
        var m2 = Floats(cond.Select(c => c.Mode));
        Tensor? x0 = null;
        float g = settings.Guidance;
        for (int i = i0; i < steps; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int t = ts[i];
            float aT = _alphaBar[t];
            float aPrev = i + 1 < steps ? _alphaBar[ts[i + 1]] : 1f;
            float sa = MathF.Sqrt(aT), s1a = MathF.Sqrt(1f - aT), sp = MathF.Sqrt(aPrev), s1p = MathF.Sqrt(1f - aPrev);
            using (var step = torch.NewDisposeScope())
            {
                var tt = full(2 * count, (long)t, dtype: int64, device: _device);
                var x2 = cat([xt, xt], 0).to(_dtype);
                var v2 = _net.Forward(x2, a2, b2, tt, slots2, s2, alpha2, m2, Config.Layout ? layout2 : null).to(float32);
                var vc = v2[..count];
                var vu = v2[count..];
                var v = vu + (g * (vc - vu));
                var p = ((sa * xt) - (s1a * v)).clamp(-1f, 1f);
                var eps = (xt - (sa * p)) / s1a;
                var next = (sp * p) + (s1p * eps);
                x0?.Dispose();
                xt.Dispose();
                x0 = p.MoveToOuterDisposeScope();
                xt = next.MoveToOuterDisposeScope();
            }

            onStep?.Invoke(count);
        }

        var host = x0!.cpu().data<float>().ToArray();
        for (int r = 0; r < count; r++)
        {
            results[start + r] = host.AsSpan(r * plane, plane).ToArray();
        }
    }

    private Tensor Image(float[] data, int n, int channels) =>
        tensor(data, [n, channels, Config.ImageSize, Config.ImageSize], dtype: float32).to(_device).to(_dtype);

    private Tensor Floats(IEnumerable<float> values) => tensor(values.ToArray(), dtype: float32).to(_device);

    private Tensor Slots(IReadOnlyList<UNetConditioning> cond) =>
        tensor(cond.SelectMany(c => new long[] { c.Background, c.Object, c.Colour, c.Motion }).ToArray(), [cond.Count, 4], dtype: int64).to(_device);
}
