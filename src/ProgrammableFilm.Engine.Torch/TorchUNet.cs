using ProgrammableFilm.Engine.Diffusion;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace ProgrammableFilm.Engine.Torch;

/// <summary>
/// The pf-scene U-Net as TorchSharp modules: a line-by-line mirror of <c>tools/train/model.py</c> (docs/model.md,
/// "Network"), built from the weights file's <c>config</c>. Submodules and parameters are registered under the PyTorch
/// <c>state_dict</c> names, so the safetensors file loads by name, every tensor checked (<see cref="LoadWeights"/>).
/// </summary>
internal sealed class TorchUNet : nn.Module
{
    private static readonly string[] Slots = ["background", "object", "colour", "motion"];

    private readonly Mlp _timeMlp, _placeMlp;
    private readonly Embedding[] _promptEmb;
    private readonly Conv2d _patchIn, _down1Conv, _down2Conv, _outConv;
    private readonly TorchResBlock _down0, _down1, _mid1, _mid2, _up1, _up0;
    private readonly TorchAttention _midAttn;
    private readonly GroupNorm _outNorm;

    public TorchUNet(UNetConfig config, IReadOnlyList<int> vocabRows)
        : base("pf-scene")
    {
        Config = config;
        int c0 = config.Channels[0], c1 = config.Channels[1], c2 = config.Channels[2];
        int e = config.EmbDim, g = config.Groups;
        double eps = config.GnEps;
        bool ss = config.ScaleShift;
        _timeMlp = new Mlp(config.TimeSinDim, e);
        _promptEmb = [.. vocabRows.Take(Slots.Length).Select(rows => nn.Embedding(rows, e))];

        _placeMlp = new Mlp((2 * config.PlaceSinDim) + 1, e);
        _patchIn = nn.Conv2d(config.InChannels * 4, c0, 1);
        int half = config.ImageSize / 2;
        _down0 = new TorchResBlock(c0, c0, e, g, eps, ss);
        _down1Conv = nn.Conv2d(c0, c1, 3, stride: 2, padding: 1);
        _down1 = new TorchResBlock(c1, c1, e, g, eps, ss);
        _down2Conv = nn.Conv2d(c1, c2, 3, stride: 2, padding: 1);
        _mid1 = new TorchResBlock(c2, c2, e, g, eps, ss);
        _midAttn = new TorchAttention(c2, g, eps);
        _mid2 = new TorchResBlock(c2, c2, e, g, eps, ss);
        _up1 = new TorchResBlock(c2 + c1, c1, e, g, eps, ss);
        _up0 = new TorchResBlock(c1 + c0, c0, e, g, eps, ss);
        _outNorm = nn.GroupNorm(g, c0, eps);
        _outConv = nn.Conv2d(c0, config.OutChannels * 4, 3, padding: 1);

        // Registration order and names follow model.py's state_dict.
        register_module("time_mlp", _timeMlp);
        register_module("prompt_emb", new Slotted(Slots, _promptEmb));
        register_module("place_mlp", _placeMlp);
        register_module("patch_in", _patchIn);
        if (config.Positional)
        {
            // Looked up by name in Forward, not kept in a field: Module.to() replaces parameters, and only updates
            // fields whose names match the registered names.
            register_parameter("pos_emb", new Parameter(zeros(1, c0, half, half), requires_grad: false));
        }

        register_module("down0", _down0);
        register_module("down1_conv", _down1Conv);
        register_module("down1", _down1);
        register_module("down2_conv", _down2Conv);
        register_module("mid1", _mid1);
        register_module("mid_attn", _midAttn);
        register_module("mid2", _mid2);
        register_module("up1", _up1);
        register_module("up0", _up0);
        register_module("out_norm", _outNorm);
        register_module("out_conv", _outConv);
    }

    public UNetConfig Config { get; }

    /// <summary>
    /// Copies every parameter from the safetensors file by its <c>state_dict</c> name, checking shapes; like PyTorch's
    /// strict <c>load_state_dict</c>, a tensor missing from the file or left over in it is an error.
    /// </summary>
    public void LoadWeights(SafetensorsFile file)
    {
        var expected = new HashSet<string>(StringComparer.Ordinal);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in named_parameters())
        {
            expected.Add(name);
            var entry = file.GetEntry(name);
            if (!entry.Shape.SequenceEqual(parameter.shape))
            {
                throw new InvalidDataException($"{file.Path}: '{name}' has shape [{string.Join(',', entry.Shape)}], the network expects [{string.Join(',', parameter.shape)}].");
            }

            using var value = tensor(file.ReadSingle(name), parameter.shape);
            parameter.copy_(value);
        }

        var extra = file.Entries.Keys.Where(k => !expected.Contains(k)).ToList();
        if (extra.Count > 0)
        {
            throw new InvalidDataException($"{file.Path}: tensors the network does not have: {string.Join(", ", extra)}.");
        }
    }

    /// <summary>model.py <c>embed</c>: time + prompt + placement, before the SiLU.</summary>
    public Tensor Embed(Tensor t, Tensor slots, Tensor s, Tensor alpha, Tensor m)
    {
        var dtype = _patchIn.weight!.dtype;
        float k = Config.PlaceScale;
        var te = _timeMlp.forward(Sinusoidal(t, Config.TimeSinDim).to(dtype));
        var pe = _promptEmb[0].forward(slots[.., 0]);
        for (int i = 1; i < Slots.Length; i++)
        {
            pe = pe + _promptEmb[i].forward(slots[.., i]);
        }

        var place = cat([Sinusoidal(k * s.to(float32), Config.PlaceSinDim), Sinusoidal(k * alpha.to(float32), Config.PlaceSinDim), m.to(float32)[.., TensorIndex.None]], 1);
        return te + pe + _placeMlp.forward(place.to(dtype));
    }

    /// <summary>
    /// model.py <c>forward</c>. x_t, A, B: [N,3,S,S]; t: [N] (int64); slots: [N,4] (int64); s, alpha, m: [N] (float32);
    /// layout: [N,1,S,S] in [0, 1] (models with a layout plane). Image inputs in the network's dtype; returns v.
    /// </summary>
    public Tensor Forward(Tensor xT, Tensor a, Tensor b, Tensor t, Tensor slots, Tensor s, Tensor alpha, Tensor m, Tensor? layout)
    {
        var se = F.silu(Embed(t, slots, s, alpha, m));
        var planes = new List<Tensor> { xT, a, b };
        if (Config.Layout)
        {
            planes.Add(layout ?? zeros_like(xT[.., ..1]));
        }

        var x = _patchIn.forward(F.pixel_unshuffle(cat(planes, 1), 2));
        if (Config.Positional)
        {
            x = x + get_parameter("pos_emb")!;
        }

        var h0 = _down0.Forward(x, se);
        var h1 = _down1.Forward(_down1Conv.forward(h0), se);
        var h = _down2Conv.forward(h1);
        h = _mid1.Forward(h, se);
        h = _midAttn.forward(h);
        h = _mid2.Forward(h, se);
        h = F.interpolate(h, scale_factor: [2, 2], mode: InterpolationMode.Nearest);
        h = _up1.Forward(cat([h, h1], 1), se);
        h = F.interpolate(h, scale_factor: [2, 2], mode: InterpolationMode.Nearest);
        h = _up0.Forward(cat([h, h0], 1), se);
        var y = _outConv.forward(F.silu(_outNorm.forward(h)));
        return F.pixel_shuffle(y, 2);
    }

    /// <summary>[sin(x f_0..f_{h-1}), cos(x f_0..f_{h-1})], f_k = exp(-ln(1e4) k / h), in float32 (docs/model.md).</summary>
    private static Tensor Sinusoidal(Tensor x, int d)
    {
        int half = d / 2;
        var k = arange(half, dtype: float32, device: x.device);
        var freq = exp(-Math.Log(10000.0) * k / half);
        var a = x.to(float32)[.., TensorIndex.None] * freq[TensorIndex.None, ..];
        return cat([sin(a), cos(a)], 1);
    }
}

/// <summary>
/// model.py's <c>nn.Sequential(Linear, SiLU, Linear)</c>, parameters named <c>0.*</c> and <c>2.*</c> as there
/// (TorchSharp's <c>Sequential</c>, like its <c>ModuleDict</c>, cannot be moved with <c>Module.to</c>: its indexers trip
/// the reflection there).
/// </summary>
internal sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear _first, _second;

    public Mlp(int inputs, int width)
        : base("Sequential")
    {
        _first = nn.Linear(inputs, width);
        _second = nn.Linear(width, width);
        register_module("0", _first);
        register_module("2", _second);
    }

    public override Tensor forward(Tensor x) => _second.forward(F.silu(_first.forward(x)));
}

/// <summary>
/// model.py's <c>nn.ModuleDict</c> of the prompt tables (TorchSharp's <c>ModuleDict</c> cannot be moved with
/// <c>Module.to</c>: its two indexers trip the reflection there).
/// </summary>
internal sealed class Slotted : nn.Module
{
    public Slotted(IReadOnlyList<string> names, IReadOnlyList<nn.Module> modules)
        : base("ModuleDict")
    {
        for (int i = 0; i < names.Count; i++)
        {
            register_module(names[i], modules[i]);
        }
    }
}

/// <summary>model.py <c>ResBlock</c>: GN → SiLU → conv, + emb (or scale/shift after the second GN), GN → SiLU → conv, + skip.</summary>
internal sealed class TorchResBlock : nn.Module
{
    private readonly GroupNorm _norm1, _norm2;
    private readonly Conv2d _conv1, _conv2;
    private readonly Conv2d? _skip;
    private readonly Linear _emb;
    private readonly bool _scaleShift;

    public TorchResBlock(int ci, int co, int embDim, int groups, double eps, bool scaleShift)
        : base("ResBlock")
    {
        _scaleShift = scaleShift;
        _norm1 = nn.GroupNorm(groups, ci, eps);
        _conv1 = nn.Conv2d(ci, co, 3, padding: 1);
        _emb = nn.Linear(embDim, scaleShift ? 2 * co : co);
        _norm2 = nn.GroupNorm(groups, co, eps);
        _conv2 = nn.Conv2d(co, co, 3, padding: 1);
        _skip = ci != co ? nn.Conv2d(ci, co, 1) : null;
        register_module("norm1", _norm1);
        register_module("conv1", _conv1);
        register_module("emb", _emb);
        register_module("norm2", _norm2);
        register_module("conv2", _conv2);
        if (_skip is not null)
        {
            register_module("skip", _skip);
        }
    }

    /// <param name="x">Input features.</param>
    /// <param name="semb">SiLU(emb), computed once by the caller.</param>
    public Tensor Forward(Tensor x, Tensor semb)
    {
        var h = _conv1.forward(F.silu(_norm1.forward(x)));
        var e = _emb.forward(semb)[.., .., TensorIndex.None, TensorIndex.None];
        if (_scaleShift)
        {
            var parts = e.chunk(2, 1);
            h = _conv2.forward(F.silu((_norm2.forward(h) * (1 + parts[0])) + parts[1]));
        }
        else
        {
            h = _conv2.forward(F.silu(_norm2.forward(h + e)));
        }

        return h + (_skip is null ? x : _skip.forward(x));
    }
}

/// <summary>model.py <c>Attention</c>: single head over the 8×8 tokens, fused qkv 1×1 conv, projection, residual.</summary>
internal sealed class TorchAttention : nn.Module<Tensor, Tensor>
{
    private readonly GroupNorm _norm;
    private readonly Conv2d _qkv, _proj;
    private readonly int _c;

    public TorchAttention(int c, int groups, double eps)
        : base("Attention")
    {
        _c = c;
        _norm = nn.GroupNorm(groups, c, eps);
        _qkv = nn.Conv2d(c, 3 * c, 1);
        _proj = nn.Conv2d(c, c, 1);
        register_module("norm", _norm);
        register_module("qkv", _qkv);
        register_module("proj", _proj);
    }

    public override Tensor forward(Tensor x)
    {
        long n = x.shape[0], h = x.shape[2], w = x.shape[3];
        var qkv = _qkv.forward(_norm.forward(x)).reshape(n, 3, _c, h * w);
        var q = qkv[.., 0].transpose(1, 2);
        var k = qkv[.., 1];
        var v = qkv[.., 2].transpose(1, 2);
        var att = softmax(bmm(q, k) / Math.Sqrt(_c), -1);
        var o = bmm(att, v).transpose(1, 2).reshape(n, _c, h, w);
        return x + _proj.forward(o);
    }
}
