using System.Runtime.Intrinsics;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>
/// 2-D convolution (square kernel, zero padding, any stride) as an implicit GEMM: output channels are the M dimension,
/// output pixels of one image the N dimension, <c>Cin × ks × ks</c> the K dimension. Weights are packed once at load;
/// each work item packs one NR-pixel B panel straight from the NCHW input (no im2col buffer) and runs the micro-kernel
/// over all MR-channel panels, then the epilogue adds bias, an optional per-(image, channel) term and an optional residual.
/// </summary>
internal sealed unsafe class Conv2d : IDisposable
{
    private readonly NativeBuffer _packedWeight;
    private readonly float[] _bias;

    public Conv2d(GemmIsa isa, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int cin, int cout, int kernelSize, int stride, int pad)
    {
        Isa = isa;
        Cin = cin;
        Cout = cout;
        KernelSize = kernelSize;
        Stride = stride;
        Pad = pad;
        K = cin * kernelSize * kernelSize;
        if (weight.Length != cout * K || bias.Length != cout)
        {
            throw new ArgumentException($"Conv weight {weight.Length} / bias {bias.Length} do not match [{cout}, {cin}, {kernelSize}, {kernelSize}].");
        }

        _bias = bias.ToArray();
        _packedWeight = new NativeBuffer(Gemm.PackedASize(isa, cout, K));
        fixed (float* w = weight)
        {
            Gemm.PackA(isa, w, K, 1, cout, K, _packedWeight.Pointer);
        }
    }

    public GemmIsa Isa { get; }

    public int Cin { get; }

    public int Cout { get; }

    public int KernelSize { get; }

    public int Stride { get; }

    public int Pad { get; }

    public int K { get; }

    public int OutSize(int inSize) => ((inSize + (2 * Pad) - KernelSize) / Stride) + 1;

    /// <summary>FLOPs (multiply and add counted separately) of one forward over <paramref name="n"/> images of h × w.</summary>
    public long Flops(int n, int h, int w) => 2L * n * OutSize(h) * OutSize(w) * Cout * K;

    /// <summary>
    /// y = conv(x) + bias (+ channelAdd[n * Cout + co]) (+ residual). <paramref name="y"/> must not alias <paramref name="x"/>;
    /// it may alias <paramref name="residual"/> element for element.
    /// </summary>
    public void Forward(Parallelism parallel, TensorView x, TensorView y, float* channelAdd = null, TensorView residual = default)
    {
        if (x.C != Cin || y.C != Cout || y.H != OutSize(x.H) || y.W != OutSize(x.W) || y.N != x.N)
        {
            throw new ArgumentException($"Conv shapes: in {x.N}x{x.C}x{x.H}x{x.W}, out {y.N}x{y.C}x{y.H}x{y.W}, layer {Cin}->{Cout} k{KernelSize} s{Stride}.");
        }

        int nr = GemmKernels.Nr(Isa);
        int panelsPerImage = (y.Plane + nr - 1) / nr;
        var table = TapTable.Get(x.H, x.W, KernelSize, Stride, Pad, nr);
        fixed (float* bias = _bias)
        {
            var job = new ConvJob
            {
                Layer = this, X = x, Y = y, Bias = bias, ChannelAdd = channelAdd, Residual = residual,
                PanelsPerImage = panelsPerImage, PackedWeight = _packedWeight.Pointer,
                Masks = table.Masks, Offsets = table.Offsets,
            };
            parallel.For(x.N * panelsPerImage, job);
        }
    }

    public void Dispose() => _packedWeight.Dispose();

    private struct ConvJob : IRangeJob
    {
        public Conv2d Layer;
        public TensorView X;
        public TensorView Y;
        public float* Bias;
        public float* ChannelAdd;
        public TensorView Residual;
        public int PanelsPerImage;
        public float* PackedWeight;
        public uint* Masks;
        public int* Offsets;

        public readonly void Execute(int start, int end)
        {
            var isa = Layer.Isa;
            int mr = GemmKernels.Mr(isa);
            int nr = GemmKernels.Nr(isa);
            int ks = Layer.KernelSize;
            int kk2 = ks * ks;
            int k = Layer.K;
            int stride = Layer.Stride;
            int pad = Layer.Pad;
            int cout = Layer.Cout;
            int inH = X.H, inW = X.W, inPlane = X.Plane;
            int outW = Y.W, outPlane = Y.Plane;
            bool contiguous = stride == 1 && outW == inW;
            float* bp = ThreadScratch.Get(0, (long)k * nr);
            float* tile = ThreadScratch.Get(1, mr * nr);
            int mPanels = (cout + mr - 1) / mr;
            bool residual = Residual.Data != null;

            for (int item = start; item < end; item++)
            {
                int n = item / PanelsPerImage;
                int p0 = (item % PanelsPerImage) * nr;
                int cols = Math.Min(nr, outPlane - p0);

                int panel = item % PanelsPerImage;
                uint* masks = Masks + ((long)panel * kk2 * nr);
                int* offsets = Offsets + ((long)panel * kk2 * nr);

                float* image = X.Image(n);
                if (contiguous && Vector256.IsHardwareAccelerated)
                {
                    // Stride 1: lane j of tap (ky, kx) reads p0 + j + (ky - pad) * W + (kx - pad), contiguous; masked lanes become 0.
                    for (int ci = 0; ci < Layer.Cin; ci++)
                    {
                        float* chan = image + ((long)ci * inPlane);
                        for (int t = 0; t < kk2; t++)
                        {
                            int ky = t / ks, kx = t % ks;
                            float* src = chan + p0 + ((ky - pad) * inW) + (kx - pad);
                            float* d = bp + ((long)((ci * kk2) + t) * nr);
                            uint* m = masks + (t * nr);
                            for (int j = 0; j < nr; j += 8)
                            {
                                Vector256.BitwiseAnd(Vector256.Load(src + j), Vector256.Load(m + j).AsSingle()).Store(d + j);
                            }
                        }
                    }
                }
                else
                {
                    for (int ci = 0; ci < Layer.Cin; ci++)
                    {
                        float* chan = image + ((long)ci * inPlane);
                        for (int t = 0; t < kk2; t++)
                        {
                            float* d = bp + ((long)((ci * kk2) + t) * nr);
                            int* off = offsets + (t * nr);
                            for (int j = 0; j < nr; j++)
                            {
                                d[j] = off[j] >= 0 ? chan[off[j]] : 0f;
                            }
                        }
                    }
                }

                float* outImage = Y.Image(n);
                float* resImage = residual ? Residual.Image(n) : null;
                for (int mp = 0; mp < mPanels; mp++)
                {
                    GemmKernels.Run(isa, PackedWeight + ((long)mp * k * mr), bp, k, tile);
                    int rows = Math.Min(mr, cout - (mp * mr));
                    for (int r = 0; r < rows; r++)
                    {
                        int co = (mp * mr) + r;
                        float s = Bias[co];
                        if (ChannelAdd != null)
                        {
                            s += ChannelAdd[(n * cout) + co];
                        }

                        float* dst = outImage + ((long)co * outPlane) + p0;
                        if (residual)
                        {
                            VecOps.AddScalarAdd(tile + (r * nr), s, resImage + ((long)co * outPlane) + p0, dst, cols);
                        }
                        else
                        {
                            VecOps.AddScalar(tile + (r * nr), s, dst, cols);
                        }
                    }
                }
            }
        }
    }
}

/// <summary>
/// For one input geometry: for every NR-pixel output panel, every kernel tap and every lane, where the lane reads
/// (offset in the input plane, -1 for padding) and a lane mask. Computed once per geometry and shared.
/// </summary>
internal sealed unsafe class TapTable
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int H, int W, int Ks, int S, int Pad, int Nr), TapTable> Cache = new();

    // Pinned arrays (pinned object heap): the pointers stay valid for the process lifetime of the cache.
    private readonly uint[] _masks;
    private readonly int[] _offsets;

    private TapTable(int h, int w, int ks, int stride, int pad, int nr)
    {
        int outH = ((h + (2 * pad) - ks) / stride) + 1, outW = ((w + (2 * pad) - ks) / stride) + 1;
        int outPlane = outH * outW;
        int panels = (outPlane + nr - 1) / nr;
        int kk2 = ks * ks;
        _masks = GC.AllocateArray<uint>(panels * kk2 * nr, pinned: true);
        _offsets = GC.AllocateArray<int>(panels * kk2 * nr, pinned: true);
        Masks = (uint*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _masks[0]);
        Offsets = (int*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _offsets[0]);
        uint* masks = Masks;
        int* offsets = Offsets;
        for (int panel = 0; panel < panels; panel++)
        {
            int p0 = panel * nr;
            for (int t = 0; t < kk2; t++)
            {
                int ky = t / ks, kx = t % ks;
                for (int j = 0; j < nr; j++)
                {
                    int p = p0 + j;
                    int oy = p / outW, ox = p % outW;
                    int iy = (oy * stride) + ky - pad, ix = (ox * stride) + kx - pad;
                    bool valid = p < outPlane && iy >= 0 && iy < h && ix >= 0 && ix < w;
                    long at = (((long)panel * kk2) + t) * nr + j;
                    masks[at] = valid ? 0xFFFFFFFFu : 0u;
                    offsets[at] = valid ? (iy * w) + ix : -1;
                }
            }
        }
    }

    public uint* Masks { get; }

    public int* Offsets { get; }

    public static TapTable Get(int h, int w, int ks, int stride, int pad, int nr) =>
        Cache.GetOrAdd((h, w, ks, stride, pad, nr), key => new TapTable(key.H, key.W, key.Ks, key.S, key.Pad, key.Nr));
}
