namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>
/// Every activation buffer of a U-Net forward pass for up to <see cref="Capacity"/> rows, allocated once and reused
/// (the skip tensors h0, h1 live inside their concat buffers, so the decoder's concatenations copy nothing).
/// </summary>
internal sealed unsafe class UNetWorkspace : IDisposable
{
    private readonly List<NativeBuffer> _buffers = [];
    private readonly NativeBuffer _input, _x0, _cat0, _d1, _cat1, _d2, _m1, _m2, _u1, _y, _output;
    private readonly NativeBuffer[] _scratch;
    private readonly NativeBuffer[] _embAdd;
    private readonly long _scratchPerImage;
    private readonly int _s, _c0, _c1, _c2, _inC, _outC;

    private readonly Dictionary<(int H, int W), NativeBuffer> _padded = [];
    private readonly int _maxChannels;
    private readonly GemmIsa _isa;

    public UNetWorkspace(UNetConfig config, int capacity, GemmIsa isa)
    {
        _isa = isa;
        Capacity = capacity;
        _s = config.ImageSize;
        _c0 = config.Channels[0];
        _c1 = config.Channels[1];
        _c2 = config.Channels[2];
        _inC = config.InChannels;
        _outC = config.OutChannels;
        long p32 = (_s / 2) * (_s / 2), p16 = (_s / 4) * (_s / 4), p8 = (_s / 8) * (_s / 8);
        NativeBuffer B(long perImage)
        {
            var b = new NativeBuffer(perImage * capacity);
            _buffers.Add(b);
            return b;
        }

        _input = B((long)_inC * _s * _s);
        _x0 = B(_c0 * p32);
        _cat0 = B((_c1 + _c0) * p32);
        _d1 = B(_c1 * p16);
        _cat1 = B((_c2 + _c1) * p16);
        _d2 = B(_c2 * p8);
        _m1 = B(_c2 * p8);
        _m2 = B(_c2 * p8);
        _u1 = B(_c1 * p16);
        _y = B(_outC * 4 * p32);
        _output = B((long)_outC * _s * _s);
        _scratchPerImage = Math.Max(Math.Max(_c0 + _c1, _c1 + _c2) * p32, 3L * _c2 * p8);
        _scratch = [B(_scratchPerImage), B(_scratchPerImage), B(_scratchPerImage)];
        _embAdd = [.. Enumerable.Range(0, 6).Select(_ => B((config.ScaleShift ? 2 : 1) * Math.Max(Math.Max(_c0, _c1), _c2)))];
        _maxChannels = Math.Max(Math.Max(_c0 + _c1, _c1 + _c2), _c2);
        Emb = new float[capacity * config.EmbDim];
        SiluEmb = new float[capacity * config.EmbDim];
    }

    public int Capacity { get; }

    /// <summary>emb before the SiLU, per row (for debugging and parity).</summary>
    public float[] Emb { get; }

    public float[] SiluEmb { get; }

    /// <summary>The network input (x_t, A, B on channels), [Capacity, 9, S, S].</summary>
    public TensorView Input => new(_input.Pointer, Capacity, _inC, _s, _s);

    /// <summary>The network output v, [Capacity, 3, S, S].</summary>
    public TensorView Output => new(_output.Pointer, Capacity, _outC, _s, _s);

    public float* EmbAdd(int block) => _embAdd[block].Pointer;

    /// <summary>A contiguous scratch view in slot 0..2.</summary>
    public TensorView Scratch(int slot, int n, int c, int h, int w)
    {
        if ((long)c * h * w > _scratchPerImage)
        {
            throw new InvalidOperationException("Scratch too small.");
        }

        return new TensorView(_scratch[slot].Pointer, n, c, h, w);
    }

    /// <summary>
    /// Where a GroupNorm that feeds a 3x3 convolution writes: a zero-bordered padded buffer (one per geometry, so the border
    /// stays zero) when the direct convolution path applies at this width, else scratch slot 0.
    /// </summary>
    public TensorView ConvInput(int n, int c, int h, int w)
    {
        int nr = GemmKernels.Nr(_isa);
        if (!GemmKernels.HasDirect(_isa) || (h * w) % nr != 0 || w % (nr / 2) != 0 || c > _maxChannels)
        {
            return Scratch(0, n, c, h, w);
        }

        if (!_padded.TryGetValue((h, w), out var buffer))
        {
            buffer = new NativeBuffer((long)Capacity * _maxChannels * (h + 2) * (w + 2));
            _padded[(h, w)] = buffer;
            _buffers.Add(buffer);
        }

        return new TensorView(buffer.Pointer, n, c, h, w, padded: true);
    }

    public Views Views(int n)
    {
        int s32 = _s / 2, s16 = _s / 4, s8 = _s / 8;
        var cat0 = new TensorView(_cat0.Pointer, n, _c1 + _c0, s32, s32);
        var cat1 = new TensorView(_cat1.Pointer, n, _c2 + _c1, s16, s16);
        return new Views
        {
            Input = new TensorView(_input.Pointer, n, _inC, _s, _s),
            X0 = new TensorView(_x0.Pointer, n, _c0, s32, s32),
            Cat0 = cat0,
            H0 = cat0.Channels(_c1, _c0),
            D1 = new TensorView(_d1.Pointer, n, _c1, s16, s16),
            Cat1 = cat1,
            H1 = cat1.Channels(_c2, _c1),
            D2 = new TensorView(_d2.Pointer, n, _c2, s8, s8),
            M1 = new TensorView(_m1.Pointer, n, _c2, s8, s8),
            M2 = new TensorView(_m2.Pointer, n, _c2, s8, s8),
            U1 = new TensorView(_u1.Pointer, n, _c1, s16, s16),
            Y = new TensorView(_y.Pointer, n, _outC * 4, s32, s32),
            Output = new TensorView(_output.Pointer, n, _outC, _s, _s),
        };
    }

    public void Dispose()
    {
        foreach (var b in _buffers)
        {
            b.Dispose();
        }
    }
}

/// <summary>The named activations of one forward pass.</summary>
internal readonly struct Views
{
    public TensorView Input { get; init; }

    public TensorView X0 { get; init; }

    public TensorView Cat0 { get; init; }

    public TensorView H0 { get; init; }

    public TensorView D1 { get; init; }

    public TensorView Cat1 { get; init; }

    public TensorView H1 { get; init; }

    public TensorView D2 { get; init; }

    public TensorView M1 { get; init; }

    public TensorView M2 { get; init; }

    public TensorView U1 { get; init; }

    public TensorView Y { get; init; }

    public TensorView Output { get; init; }
}
