namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>Per-row conditioning of one network evaluation (docs/model.md, "Data and conditioning").</summary>
public readonly record struct UNetConditioning(float Timestep, int Background, int Object, int Colour, int Motion, float S, float Alpha, float Mode);

/// <summary>
/// The pf-scene U-Net (docs/model.md, "Network"), built from the weights file's <c>config</c>. Evaluation goes through a
/// <see cref="UNetWorkspace"/> that owns every activation buffer for a maximum batch, so a forward pass allocates nothing.
/// </summary>
internal sealed unsafe class UNet : IDisposable
{
    private static readonly string[] Slots = ["background", "object", "colour", "motion"];

    private readonly Linear _time0, _time2, _place0, _place2;
    private readonly float[][] _promptTables;
    private readonly Conv2d _patchIn, _down1Conv, _down2Conv, _outConv;
    private readonly ResBlock _down0, _down1, _mid1, _mid2, _up1, _up0;
    private readonly AttentionBlock _attn;
    private readonly GroupNorm _outNorm;
    private readonly NativeBuffer? _positions;
    private readonly List<IDisposable> _owned = [];

    public UNet(SafetensorsFile weights, GemmIsa isa)
    {
        Isa = isa;
        string configJson = weights.Metadata.TryGetValue("config", out var c) ? c : throw new InvalidDataException($"{weights.Path}: no 'config' metadata.");
        Config = UNetConfig.Parse(configJson);
        if (Config.Channels.Count != 3)
        {
            throw new NotSupportedException("Only three trunk levels are supported.");
        }

        int c0 = Config.Channels[0], c1 = Config.Channels[1], c2 = Config.Channels[2];
        int e = Config.EmbDim, g = Config.Groups;
        float eps = (float)Config.GnEps;

        Linear Lin(string name) => new(weights.ReadSingle(name + ".weight"), weights.ReadSingle(name + ".bias"));
        GroupNorm Gn(string name) => new(weights.ReadSingle(name + ".weight"), weights.ReadSingle(name + ".bias"), g, eps);
        Conv2d Conv(string name, int ci, int co, int ks, int stride, int pad)
        {
            var conv = new Conv2d(isa, weights.ReadSingle(name + ".weight"), weights.ReadSingle(name + ".bias"), ci, co, ks, stride, pad);
            _owned.Add(conv);
            return conv;
        }

        ResBlock Res(string name, int ci, int co) => new(
            Gn(name + ".norm1"), Conv(name + ".conv1", ci, co, 3, 1, 1), Lin(name + ".emb"),
            Gn(name + ".norm2"), Conv(name + ".conv2", co, co, 3, 1, 1),
            ci != co ? Conv(name + ".skip", ci, co, 1, 1, 0) : null,
            Config.ScaleShift);

        _time0 = Lin("time_mlp.0");
        _time2 = Lin("time_mlp.2");
        _place0 = Lin("place_mlp.0");
        _place2 = Lin("place_mlp.2");
        _promptTables = Slots.Select(s => weights.ReadSingle($"prompt_emb.{s}.weight")).ToArray();
        VocabRows = _promptTables.Select(t => t.Length / e).ToArray();

        int inputPlanes = Config.Layout ? 10 : 9;
        if (Config.InChannels != inputPlanes)
        {
            throw new InvalidDataException($"{weights.Path}: in_channels is {Config.InChannels}; x_t, A, B{(Config.Layout ? " and the layout" : "")} make {inputPlanes}.");
        }

        // patch_in is a 1x1 conv on pixel_unshuffle(x, 2); channel c*4 + dy*2 + dx is exactly tap (c, dy, dx) of a
        // 2x2 stride-2 conv with the same weights, so the unshuffle is fused away (same K order, same arithmetic).
        _patchIn = Conv("patch_in", Config.InChannels, c0, 2, 2, 0);
        if (Config.Positional)
        {
            var table = weights.ReadSingle("pos_emb");
            int half = Config.ImageSize / 2;
            if (table.Length != c0 * half * half)
            {
                throw new InvalidDataException($"{weights.Path}: pos_emb has {table.Length} values, expected {c0}x{half}x{half}.");
            }

            _positions = new NativeBuffer(table.Length);
            table.CopyTo(_positions.AsSpan());
            _owned.Add(_positions);
        }

        _down0 = Res("down0", c0, c0);
        _down1Conv = Conv("down1_conv", c0, c1, 3, 2, 1);
        _down1 = Res("down1", c1, c1);
        _down2Conv = Conv("down2_conv", c1, c2, 3, 2, 1);
        _mid1 = Res("mid1", c2, c2);
        _attn = new AttentionBlock(Gn("mid_attn.norm"), Conv("mid_attn.qkv", c2, 3 * c2, 1, 1, 0), Conv("mid_attn.proj", c2, c2, 1, 1, 0), isa);
        _mid2 = Res("mid2", c2, c2);
        _up1 = Res("up1", c2 + c1, c1);
        _up0 = Res("up0", c1 + c0, c0);
        _outNorm = Gn("out_norm");
        _outConv = Conv("out_conv", c0, Config.OutChannels * 4, 3, 1, 1);
        ResBlocks = [_down0, _down1, _mid1, _mid2, _up1, _up0];
        for (int i = 0; i < ResBlocks.Length; i++)
        {
            ResBlocks[i].Index = i;
        }
    }

    public UNetConfig Config { get; }

    public GemmIsa Isa { get; }

    /// <summary>Rows of each prompt table (vocabulary size + 1).</summary>
    public IReadOnlyList<int> VocabRows { get; }

    internal ResBlock[] ResBlocks { get; }

    /// <summary>FLOPs of one forward of one image (convolutions, attention products, embedding layers).</summary>
    public long FlopsPerImage
    {
        get
        {
            int s = Config.ImageSize, h32 = s / 2, h16 = s / 4, h8 = s / 8, e = Config.EmbDim;
            long f = 2L * ((_time0.In * e) + (e * e) + (_place0.In * e) + (e * e));
            f += _patchIn.Flops(1, s, s) + (_positions?.Length ?? 0) + _down0.Flops(h32) + _down1Conv.Flops(1, h32, h32) + _down1.Flops(h16);
            f += _down2Conv.Flops(1, h16, h16) + _mid1.Flops(h8) + _attn.Flops(h8) + _mid2.Flops(h8);
            f += _up1.Flops(h16) + _up0.Flops(h32) + _outConv.Flops(1, h32, h32);
            return f;
        }
    }

    /// <summary>
    /// One forward pass over the first <paramref name="n"/> rows of <see cref="UNetWorkspace.Input"/> (x_t, A, B on channels)
    /// with per-row <paramref name="cond"/>; v is written to <see cref="UNetWorkspace.Output"/>.
    /// </summary>
    public void Forward(Parallelism parallel, UNetWorkspace ws, int n, ReadOnlySpan<UNetConditioning> cond)
    {
        if (n > ws.Capacity || cond.Length < n)
        {
            throw new ArgumentException($"Batch {n} exceeds workspace capacity {ws.Capacity} or conditioning rows {cond.Length}.");
        }

        Embed(ws, n, cond);
        var w = ws.Views(n);

        long stamp = Profile is null ? 0 : System.Diagnostics.Stopwatch.GetTimestamp();
        // The position table is one image broadcast over the batch (batch stride 0), added in the convolution's epilogue.
        var positions = _positions is null ? default : new TensorView(_positions.Pointer, n, w.X0.C, w.X0.H, w.X0.W, batchStride: 0);
        _patchIn.Forward(parallel, w.Input, w.X0, null, positions);
        Mark(ref stamp, "_patchIn:0");
        _down0.Forward(parallel, ws, n, w.X0, w.H0);
        Mark(ref stamp, "_down0:1");
        _down1Conv.Forward(parallel, w.H0, w.D1);
        Mark(ref stamp, "_down1Conv:2");
        _down1.Forward(parallel, ws, n, w.D1, w.H1);
        Mark(ref stamp, "_down1:3");
        _down2Conv.Forward(parallel, w.H1, w.D2);
        Mark(ref stamp, "_down2Conv:4");
        _mid1.Forward(parallel, ws, n, w.D2, w.M1);
        Mark(ref stamp, "_mid1:5");
        _attn.Forward(parallel, ws, n, w.M1, w.M2);
        Mark(ref stamp, "_attn:6");
        _mid2.Forward(parallel, ws, n, w.M2, w.M1);
        Mark(ref stamp, "_mid2:7");
        TensorOps.Upsample2x(parallel, w.M1, w.Cat1.Channels(0, w.M1.C));
        Mark(ref stamp, "TensorOps:8");
        _up1.Forward(parallel, ws, n, w.Cat1, w.U1);
        Mark(ref stamp, "_up1:9");
        TensorOps.Upsample2x(parallel, w.U1, w.Cat0.Channels(0, w.U1.C));
        Mark(ref stamp, "TensorOps:10");
        _up0.Forward(parallel, ws, n, w.Cat0, w.X0);
        Mark(ref stamp, "_up0:11");
        var normed = ws.ConvInput(n, w.X0.C, w.X0.H, w.X0.W);
        _outNorm.Forward(parallel, w.X0, normed, silu: true);
        Mark(ref stamp, "_outNorm:12");
        _outConv.Forward(parallel, normed, w.Y);
        Mark(ref stamp, "_outConv:13");
        TensorOps.PixelShuffle2(w.Y, w.Output);
    }

    /// <summary>When set, receives (stage, seconds) after every stage of a forward pass (profiling only).</summary>
    internal static Action<string, double>? Profile { get; set; }

    private static void Mark(ref long stamp, string stage)
    {
        if (Profile is { } p)
        {
            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            p(stage, (now - stamp) / (double)System.Diagnostics.Stopwatch.Frequency);
            stamp = now;
        }
    }

    public void Dispose()
    {
        foreach (var d in _owned)
        {
            d.Dispose();
        }
    }

    /// <summary>emb = time_mlp(sin(t)) + Σ prompt rows + place_mlp([sin(k s), sin(k alpha), m]) with k = place_scale; then SiLU and each block's projection.</summary>
    private void Embed(UNetWorkspace ws, int n, ReadOnlySpan<UNetConditioning> cond)
    {
        int e = Config.EmbDim;
        int tsd = Config.TimeSinDim, psd = Config.PlaceSinDim;
        float placeScale = Config.PlaceScale;
        Span<float> sinT = stackalloc float[tsd];
        Span<float> place = stackalloc float[(2 * psd) + 1];
        Span<float> hidden = stackalloc float[e];
        Span<float> te = stackalloc float[e];
        Span<float> pl = stackalloc float[e];
        for (int row = 0; row < n; row++)
        {
            var c = cond[row];
            Sinusoidal(c.Timestep, sinT);
            _time0.Forward(sinT, hidden);
            TensorOps.Silu(hidden);
            _time2.Forward(hidden, te);

            Sinusoidal(placeScale * c.S, place[..psd]);
            Sinusoidal(placeScale * c.Alpha, place.Slice(psd, psd));
            place[2 * psd] = c.Mode;
            _place0.Forward(place, hidden);
            TensorOps.Silu(hidden);
            _place2.Forward(hidden, pl);

            Span<int> idx = [c.Background, c.Object, c.Colour, c.Motion];
            var emb = ws.SiluEmb.AsSpan(row * e, e);
            for (int j = 0; j < e; j++)
            {
                float pe = 0f;
                for (int s = 0; s < 4; s++)
                {
                    int i = Math.Clamp(idx[s], 0, VocabRows[s] - 1);
                    pe += _promptTables[s][(i * e) + j];
                }

                emb[j] = te[j] + pe + pl[j];
            }

            emb.CopyTo(ws.Emb.AsSpan(row * e, e));
            TensorOps.Silu(emb);
            for (int b = 0; b < ResBlocks.Length; b++)
            {
                var blk = ResBlocks[b];
                int width = blk.EmbProjection.Out;
                blk.EmbProjection.Forward(emb, new Span<float>(ws.EmbAdd(b), ws.Capacity * width).Slice(row * width, width));
            }
        }
    }

    /// <summary>[sin(x f_0..f_{h-1}), cos(x f_0..f_{h-1})], f_k = exp(-ln(1e4) k / h), in float32 like the reference.</summary>
    internal static void Sinusoidal(float x, Span<float> dst)
    {
        int half = dst.Length / 2;
        float c = (float)-Math.Log(10000.0);
        for (int k = 0; k < half; k++)
        {
            float freq = MathF.Exp(c * k / half);
            float a = x * freq;
            dst[k] = MathF.Sin(a);
            dst[half + k] = MathF.Cos(a);
        }
    }
}

/// <summary>
/// ResBlock(ci, co): h = conv1(SiLU(GN(x))); then conv2(SiLU(GN(h + emb))) + skip(x), or with scale-shift
/// conv2(SiLU(GN(h) * (1 + scale) + shift)) + skip(x), where emb (or scale, shift) is this block's projection of SiLU(emb).
/// </summary>
internal sealed unsafe class ResBlock(GroupNorm norm1, Conv2d conv1, Linear emb, GroupNorm norm2, Conv2d conv2, Conv2d? skip, bool scaleShift)
{
    public int Index { get; set; }

    public int Cin => conv1.Cin;

    public int Cout => conv1.Cout;

    public Linear EmbProjection => emb;

    public long Flops(int size) => conv1.Flops(1, size, size) + conv2.Flops(1, size, size) + (skip?.Flops(1, size, size) ?? 0) + (2L * emb.In * emb.Out);

    public void Forward(Parallelism parallel, UNetWorkspace ws, int n, TensorView x, TensorView y)
    {
        var a = ws.ConvInput(n, x.C, x.H, x.W);
        norm1.Forward(parallel, x, a, silu: true);
        var h = ws.Scratch(1, n, Cout, x.H, x.W);
        conv1.Forward(parallel, a, h, scaleShift ? null : ws.EmbAdd(Index));
        var b = ws.ConvInput(n, Cout, x.H, x.W);
        norm2.Forward(parallel, h, b, silu: true, scaleShift ? ws.EmbAdd(Index) : null);
        if (skip is null)
        {
            conv2.Forward(parallel, b, y, null, x);
        }
        else
        {
            var s = ws.Scratch(2, n, Cout, x.H, x.W);
            skip.Forward(parallel, x, s);
            conv2.Forward(parallel, b, y, null, s);
        }
    }
}
