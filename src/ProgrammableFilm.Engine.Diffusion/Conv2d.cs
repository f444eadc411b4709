using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>
/// 2-D convolution (square kernel, zero padding, any stride) as an implicit GEMM: output channels are the M dimension,
/// output pixels of one image the N dimension, <c>Cin × ks × ks</c> the K dimension. Weights are packed once at load;
/// each work item packs one NR-pixel B panel straight from the NCHW input (no im2col buffer) and runs the micro-kernel
/// over all MR-channel panels, then the epilogue adds bias, an optional per-(image, channel) term and an optional residual.
/// </summary>
internal sealed unsafe class Conv2d : IDisposable
{
    /// <summary>Target rows of one packed B block (KC); a 192 × 32 float block is 24 KiB, half of L1d.</summary>
    internal static int BlockK { get; set; } = int.TryParse(Environment.GetEnvironmentVariable("PF_CONV_KC"), out int kc) ? kc : 192;

    internal static bool PrefetchEnabled { get; set; } = Environment.GetEnvironmentVariable("PF_NOPREFETCH") is null;

    private readonly NativeBuffer _packedWeight;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(int H, int W, bool Padded), DirectTable> _directTables = new();
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
        Mr = GemmKernels.MrFor(isa, cout);
        _packedWeight = new NativeBuffer(Gemm.PackedASize(Mr, cout, K));
        fixed (float* w = weight)
        {
            Gemm.PackA(Mr, w, K, 1, cout, K, _packedWeight.Pointer);
        }
    }

    public GemmIsa Isa { get; }

    /// <summary>Output channels per micro-kernel panel (12 or 8 with AVX-512, chosen so no panel rows are wasted).</summary>
    public int Mr { get; }

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
        bool direct = GemmKernels.HasDirect(Isa) && Stride == 1 && y.Plane % nr == 0 && x.W % (nr / 2) == 0 &&
            ((x.Padded && KernelSize == 3 && Pad == 1) || (!x.Padded && KernelSize == 1 && Pad == 0));
        if (x.Padded && !direct)
        {
            throw new ArgumentException("A padded input needs the direct 3x3 path (stride 1, width a multiple of NR/2).");
        }

        fixed (float* bias = _bias)
        {
            if (direct)
            {
                var table = _directTables.GetOrAdd((x.H, x.W, x.Padded), key => new DirectTable(this, key.H, key.W, key.Padded, nr));
                fixed (int* koff = table.KOffsets)
                {
                    var job = new DirectJob
                    {
                        Layer = this, X = x, Y = y, Bias = bias, ChannelAdd = channelAdd, Residual = residual,
                        PanelsPerImage = panelsPerImage, PackedWeight = _packedWeight.Pointer, Table = table, KOffsets = koff,
                    };
                    parallel.For(x.N * panelsPerImage, job);
                }
            }
            else
            {
                var table = TapTable.Get(x.H, x.W, KernelSize, Stride, Pad, nr);
                var job = new ConvJob
                {
                    Layer = this, X = x, Y = y, Bias = bias, ChannelAdd = channelAdd, Residual = residual,
                    PanelsPerImage = panelsPerImage, PackedWeight = _packedWeight.Pointer,
                    Masks = table.Masks, Offsets = table.Offsets, ClampedOffsets = table.ClampedOffsets, Table = table,
                };
                parallel.For(x.N * panelsPerImage, job);
            }
        }
    }

    public void Dispose() => _packedWeight.Dispose();

    /// <summary>y = tile + (bias + channelAdd) (+ residual) for every valid row and column of the MR-panels of one item.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Epilogue(Conv2d layer, float* tiles, int n, int p0, int cols, TensorView y, float* bias, float* channelAdd, TensorView residual)
    {
        int nr = GemmKernels.Nr(layer.Isa);
        int cout = layer.Cout;
        int outPlane = y.Plane;
        float* outImage = y.Image(n) + p0;
        float* resImage = residual.Data != null ? residual.Image(n) + p0 : null;
        float* add = channelAdd != null ? channelAdd + (n * cout) : null;

        // Tiles are MR rows of NR floats, panel after panel: row co of the output is tile row co.
        for (int co = 0; co < cout; co++)
        {
            float* tile = tiles + (co * nr);
            float s = add != null ? bias[co] + add[co] : bias[co];
            float* dst = outImage + ((long)co * outPlane);
            float* res = resImage != null ? resImage + ((long)co * outPlane) : null;
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var vs = Vector512.Create(s);
                for (; j + 16 <= cols; j += 16)
                {
                    var v = Vector512.Load(tile + j) + vs;
                    if (res != null)
                    {
                        v += Vector512.Load(res + j);
                    }

                    v.Store(dst + j);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var vs = Vector256.Create(s);
                for (; j + 8 <= cols; j += 8)
                {
                    var v = Vector256.Load(tile + j) + vs;
                    if (res != null)
                    {
                        v += Vector256.Load(res + j);
                    }

                    v.Store(dst + j);
                }
            }

            for (; j < cols; j++)
            {
                dst[j] = res != null ? tile[j] + s + res[j] : tile[j] + s;
            }
        }
    }

    private static void Prefetch(float* chan, int[] lines)
    {
        if (Sse.IsSupported)
        {
            foreach (int line in lines)
            {
                Sse.Prefetch0(chan + line);
            }
        }
    }

    private struct DirectJob : IRangeJob
    {
        public Conv2d Layer;
        public TensorView X;
        public TensorView Y;
        public float* Bias;
        public float* ChannelAdd;
        public TensorView Residual;
        public int PanelsPerImage;
        public float* PackedWeight;
        public DirectTable Table;
        public int* KOffsets;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int start, int end)
        {
            var isa = Layer.Isa;
            int mr = Layer.Mr;
            int nr = GemmKernels.Nr(isa);
            int kk2 = Layer.KernelSize * Layer.KernelSize;
            int k = Layer.K;
            int cin = Layer.Cin;
            int mPanels = (Layer.Cout + mr - 1) / mr;
            int chunk = Math.Max(1, BlockK / kk2);
            float* tiles = ThreadScratch.Get(1, (long)mPanels * mr * nr);
            int plane = X.PlaneStride;
            for (int item = start; item < end; item++)
            {
                int n = item / PanelsPerImage;
                int panel = item % PanelsPerImage;
                float* image = X.Image(n);
                float* b0 = image + Table.Base0[panel];
                float* b1 = image + Table.Base1[panel];
                int[] next = [];
                float* nextImage = null;
                if (item + 1 < end)
                {
                    next = Table.NewLines[(item + 1) % PanelsPerImage];
                    nextImage = X.Image((item + 1) / PanelsPerImage);
                }

                for (int c0 = 0; c0 < cin; c0 += chunk)
                {
                    int cc = Math.Min(chunk, cin - c0);
                    if (PrefetchEnabled)
                    {
                        for (int ci = c0; ci < c0 + cc; ci++)
                        {
                            Prefetch(nextImage + ((long)ci * plane), next);
                        }
                    }

                    int k0 = c0 * kk2;
                    int kLen = cc * kk2;
                    for (int mp = 0; mp < mPanels; mp++)
                    {
                        GemmKernels.RunDirect(isa, mr, PackedWeight + ((long)mp * k * mr) + ((long)k0 * mr), b0, b1, KOffsets + k0, kLen, tiles + (mp * mr * nr), accumulate: c0 > 0);
                    }
                }

                Epilogue(Layer, tiles, n, panel * nr, nr, Y, Bias, ChannelAdd, Residual);
            }
        }
    }

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
        public int* ClampedOffsets;
        public TapTable Table;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int start, int end)
        {
            var isa = Layer.Isa;
            int mr = Layer.Mr;
            int nr = GemmKernels.Nr(isa);
            int kk2 = Layer.KernelSize * Layer.KernelSize;
            int k = Layer.K;
            int cin = Layer.Cin;
            int cout = Layer.Cout;
            int inPlane = X.Plane;
            int outPlane = Y.Plane;
            bool contiguous = Layer.Stride == 1 && Y.W == X.W && Vector256.IsHardwareAccelerated;

            // K is walked in blocks of whole channels so the packed B block (KC × NR) stays in L1 while every MR-channel
            // panel of A runs over it; the FMA chains continue across blocks (accumulate), so blocking changes no bits.
            int chunk = Math.Max(1, BlockK / kk2);
            float* bp = ThreadScratch.Get(0, (long)Math.Min(chunk, cin) * kk2 * nr);
            int mPanels = (cout + mr - 1) / mr;
            float* tiles = ThreadScratch.Get(1, (long)mPanels * mr * nr);
            bool residual = Residual.Data != null;
            int[] shifts = Table.TapShift;

            for (int item = start; item < end; item++)
            {
                int n = item / PanelsPerImage;
                int panel = item % PanelsPerImage;
                int p0 = panel * nr;
                int cols = Math.Min(nr, outPlane - p0);
                uint* masks = Masks + ((long)panel * kk2 * nr);
                int* offsets = Offsets + ((long)panel * kk2 * nr);
                float* image = X.Image(n);

                // The lines the next item reads first; prefetched channel by channel while this panel is packed.
                int[] next = [];
                float* nextImage = null;
                if (item + 1 < end)
                {
                    next = Table.NewLines[(item + 1) % PanelsPerImage];
                    nextImage = X.Image((item + 1) / PanelsPerImage);
                }

                for (int c0 = 0; c0 < cin; c0 += chunk)
                {
                    int cc = Math.Min(chunk, cin - c0);
                    for (int ci = c0; ci < c0 + cc; ci++)
                    {
                        float* chan = image + ((long)ci * inPlane);
                        float* dst = bp + ((long)(ci - c0) * kk2 * nr);
                        Prefetch(nextImage + ((long)ci * inPlane), next);
                        if (contiguous)
                        {
                            // Stride 1: lane j of tap t reads p0 + j + shift[t], contiguous; masked lanes become 0.
                            for (int t = 0; t < kk2; t++)
                            {
                                float* src = chan + p0 + shifts[t];
                                float* d = dst + (t * nr);
                                uint* m = masks + (t * nr);
                                for (int j = 0; j < nr; j += 8)
                                {
                                    Vector256.BitwiseAnd(Vector256.Load(src + j), Vector256.Load(m + j).AsSingle()).Store(d + j);
                                }
                            }
                        }
                        else if (Avx2.IsSupported)
                        {
                            // Strided taps: hardware gather from clamped offsets, padding lanes masked to 0.
                            int* clamped = ClampedOffsets + ((long)panel * kk2 * nr);
                            for (int t = 0; t < kk2 * nr; t += 8)
                            {
                                var v = Avx2.GatherVector256(chan, Vector256.Load(clamped + t), 4);
                                Vector256.BitwiseAnd(v, Vector256.Load(masks + t).AsSingle()).Store(dst + t);
                            }
                        }
                        else
                        {
                            for (int t = 0; t < kk2 * nr; t++)
                            {
                                int off = offsets[t];
                                dst[t] = off >= 0 ? chan[off] : 0f;
                            }
                        }
                    }

                    int k0 = c0 * kk2;
                    int kLen = cc * kk2;
                    for (int mp = 0; mp < mPanels; mp++)
                    {
                        GemmKernels.Run(isa, mr, PackedWeight + ((long)mp * k * mr) + ((long)k0 * mr), bp, kLen, tiles + (mp * mr * nr), accumulate: c0 > 0);
                    }
                }

                Epilogue(Layer, tiles, n, p0, cols, Y, Bias, ChannelAdd, Residual);
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
    private readonly int[] _clamped;

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
        _clamped = GC.AllocateArray<int>(panels * kk2 * nr, pinned: true);
        ClampedOffsets = (int*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _clamped[0]);
        uint* masks = Masks;
        int* offsets = Offsets;
        TapShift = new int[kk2];
        for (int t = 0; t < kk2; t++)
        {
            TapShift[t] = (((t / ks) - pad) * w) + ((t % ks) - pad);
        }

        NewLines = new int[panels][];
        var previous = new HashSet<int>();
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
                    ClampedOffsets[at] = valid ? (iy * w) + ix : 0;
                }
            }

            var lines = new HashSet<int>();
            for (int i = 0; i < kk2 * nr; i++)
            {
                int off = offsets[((long)panel * kk2 * nr) + i];
                if (off >= 0)
                {
                    lines.Add(off >> 4);
                }
            }

            NewLines[panel] = [.. lines.Where(l => !previous.Contains(l)).Order().Select(l => l << 4)];
            previous = lines;
        }
    }

    public uint* Masks { get; }

    public int* Offsets { get; }

    /// <summary>Like <see cref="Offsets"/> with padding lanes pointing at element 0 (for gathers; the mask zeroes them).</summary>
    public int* ClampedOffsets { get; }

    /// <summary>Per tap, the offset of lane 0 relative to the panel's first output pixel (stride-1 layers): (ky - pad) W + (kx - pad).</summary>
    public int[] TapShift { get; }

    /// <summary>
    /// Per panel, the 64-byte lines (as float offsets in a channel plane) it reads that the previous panel did not: the
    /// conv prefetches them for the next work item while packing the current one, because each K row of a panel comes
    /// from a different channel plane and the hardware prefetchers cannot follow that many streams.
    /// </summary>
    public int[][] NewLines { get; }

    public static TapTable Get(int h, int w, int ks, int stride, int pad, int nr) =>
        Cache.GetOrAdd((h, w, ks, stride, pad, nr), key => new TapTable(key.H, key.W, key.Ks, key.S, key.Pad, key.Nr));
}

/// <summary>
/// Direct-path tables of one layer for one input geometry: the input offset of every K row (channel plane + tap), the
/// two vector start offsets of every NR-pixel panel, and the lines each panel newly reads (for prefetching).
/// </summary>
internal sealed class DirectTable
{
    public DirectTable(Conv2d layer, int h, int w, bool padded, int nr)
    {
        int ks = layer.KernelSize, kk2 = ks * ks;
        int rowStride = padded ? w + 2 : w;
        int plane = padded ? (h + 2) * (w + 2) : h * w;
        KOffsets = new int[layer.K];
        var taps = new int[kk2];
        for (int t = 0; t < kk2; t++)
        {
            taps[t] = ((t / ks) * rowStride) + (t % ks);
        }

        for (int ci = 0; ci < layer.Cin; ci++)
        {
            for (int t = 0; t < kk2; t++)
            {
                KOffsets[(ci * kk2) + t] = (ci * plane) + taps[t];
            }
        }

        int vw = nr / 2;
        int panels = h * w / nr;
        Base0 = new int[panels];
        Base1 = new int[panels];
        NewLines = new int[panels][];
        var previous = new HashSet<int>();
        for (int q = 0; q < panels; q++)
        {
            int Start(int p) => padded ? ((p / w) * rowStride) + (p % w) : p;
            Base0[q] = Start(q * nr);
            Base1[q] = Start((q * nr) + vw);
            var lines = new HashSet<int>();
            foreach (int b in (int[])[Base0[q], Base1[q]])
            {
                foreach (int tap in taps)
                {
                    lines.Add((b + tap) >> 4);
                    lines.Add((b + tap + vw - 1) >> 4);
                }
            }

            NewLines[q] = [.. lines.Where(l => !previous.Contains(l)).Order().Select(l => l << 4)];
            previous = lines;
        }
    }

    public int[] KOffsets { get; }

    public int[] Base0 { get; }

    public int[] Base1 { get; }

    public int[][] NewLines { get; }
}
