using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>Per-thread scratch buffers (pack panels, tiles, masks), grown on demand and reused across calls.</summary>
internal static unsafe class ThreadScratch
{
    private const int Slots = 4;

    [ThreadStatic]
    private static NativeBuffer?[]? t_buffers;

    /// <summary>A buffer of at least <paramref name="floats"/> floats for this thread; slot distinguishes concurrent uses.</summary>
    public static float* Get(int slot, long floats)
    {
        var buffers = t_buffers ??= new NativeBuffer?[Slots];
        var b = buffers[slot];
        if (b is null || b.Length < floats)
        {
            b?.Dispose();
            b = new NativeBuffer(Math.Max(floats, 1024));
            buffers[slot] = b;
        }

        return b.Pointer;
    }
}

/// <summary>
/// Blocked single-precision GEMM, row-major with arbitrary strides: <c>C[M × N] = A[M × K] · B[K × N]</c>.
/// A is packed once into MR-row panels, B into K × NR column panels (one per work item); threads split the N panels
/// (never K), so every output element is the same chain of FMAs whatever the thread count.
/// </summary>
internal static unsafe class Gemm
{
    /// <summary>K rows per packed B block.</summary>
    internal const int KBlock = 128;

    /// <summary>N panels per work item.</summary>
    internal const int NGroup = 4;

    /// <summary>Packs A (element (m, k) at <c>a[m*rs + k*cs]</c>) into MR-row panels, zero-padding the last panel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackA(GemmIsa isa, float* a, long rs, long cs, int m, int k, float* dst) => PackA(GemmKernels.Mr(isa), a, rs, cs, m, k, dst);

    /// <summary>Packs A into panels of <paramref name="mr"/> rows.</summary>
    public static void PackA(int mr, float* a, long rs, long cs, int m, int k, float* dst)
    {
        int panels = (m + mr - 1) / mr;
        for (int p = 0; p < panels; p++)
        {
            float* d = dst + ((long)p * k * mr);
            for (int kk = 0; kk < k; kk++)
            {
                for (int r = 0; r < mr; r++)
                {
                    int row = (p * mr) + r;
                    d[(kk * mr) + r] = row < m ? a[(row * rs) + (kk * cs)] : 0f;
                }
            }
        }
    }

    public static long PackedASize(GemmIsa isa, int m, int k) => PackedASize(GemmKernels.Mr(isa), m, k);

    public static long PackedASize(int mr, int m, int k)
    {
        return (long)((m + mr - 1) / mr) * mr * k;
    }

    /// <summary>C = A·B with strided A (a[m*ars + k*acs]) and B (b[k*brs + n*bcs]); C row-major with leading dimension ldc.</summary>
    public static void Multiply(
        Parallelism parallel, GemmIsa isa, int m, int n, int k,
        float* a, long ars, long acs, float* b, long brs, long bcs, float* c, long ldc)
    {
        if (m <= 0 || n <= 0)
        {
            return;
        }

        var packedA = new NativeBuffer(PackedASize(isa, m, k));
        try
        {
            PackA(isa, a, ars, acs, m, k, packedA.Pointer);
            MultiplyPacked(parallel, isa, m, n, k, packedA.Pointer, b, brs, bcs, c, ldc);
        }
        finally
        {
            packedA.Dispose();
        }
    }

    /// <summary>C = A·B with A already packed by <see cref="PackA"/>.</summary>
    public static void MultiplyPacked(
        Parallelism parallel, GemmIsa isa, int m, int n, int k,
        float* packedA, float* b, long brs, long bcs, float* c, long ldc)
    {
        int nr = GemmKernels.Nr(isa);
        int panels = (n + nr - 1) / nr;
        var job = new StridedJob
        {
            Isa = isa, M = m, N = n, K = k, A = packedA, B = b, Brs = brs, Bcs = bcs, C = c, Ldc = ldc,
        };
        parallel.For((panels + NGroup - 1) / NGroup, job);
    }

    /// <summary>Single-threaded C = A·B (same arithmetic as the parallel path), for small per-image products.</summary>
    public static void MultiplyPackedSerial(
        GemmIsa isa, int m, int n, int k, float* packedA, float* b, long brs, long bcs, float* c, long ldc)
    {
        int nr = GemmKernels.Nr(isa);
        var job = new StridedJob
        {
            Isa = isa, M = m, N = n, K = k, A = packedA, B = b, Brs = brs, Bcs = bcs, C = c, Ldc = ldc,
        };
        job.Execute(0, (((n + nr - 1) / nr) + NGroup - 1) / NGroup);
    }

    /// <summary>Stores the valid part of an MR × NR tile into C.</summary>
    public static void StoreTile(float* tile, int nr, int rows, int cols, float* c, long ldc)
    {
        for (int r = 0; r < rows; r++)
        {
            new ReadOnlySpan<float>(tile + (r * nr), cols).CopyTo(new Span<float>(c + (r * ldc), cols));
        }
    }

    private struct StridedJob : IRangeJob
    {
        public GemmIsa Isa;
        public int M;
        public int N;
        public int K;
        public float* A;
        public float* B;
        public long Brs;
        public long Bcs;
        public float* C;
        public long Ldc;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int start, int end)
        {
            int mr = GemmKernels.Mr(Isa);
            int nr = GemmKernels.Nr(Isa);
            int mPanels = (M + mr - 1) / mr;
            int panels = (N + nr - 1) / nr;

            // Work item = a group of NGroup N panels. K runs in blocks of KC rows: the group's packed B block stays in L2,
            // each A micro-panel slice (KC × MR) in L1 while it meets every panel of the group, so A streams from memory
            // once per group instead of once per panel. The FMA chains continue across K blocks (accumulate): blocking
            // changes no bits.
            int kc = Math.Min(K, KBlock);
            float* bp = ThreadScratch.Get(0, (long)kc * nr * NGroup);
            float* tiles = ThreadScratch.Get(1, (long)mPanels * NGroup * mr * nr);
            for (int group = start; group < end; group++)
            {
                int p0 = group * NGroup;
                int gCount = Math.Min(NGroup, panels - p0);
                for (int k0 = 0; k0 < K; k0 += kc)
                {
                    int kLen = Math.Min(kc, K - k0);
                    for (int g = 0; g < gCount; g++)
                    {
                        int n0 = (p0 + g) * nr;
                        int cols = Math.Min(nr, N - n0);
                        for (int kk = 0; kk < kLen; kk++)
                        {
                            float* src = B + ((k0 + kk) * Brs) + (n0 * Bcs);
                            float* d = bp + ((long)g * kc * nr) + (kk * nr);
                            if (Bcs == 1 && cols == nr)
                            {
                                new ReadOnlySpan<float>(src, nr).CopyTo(new Span<float>(d, nr));
                            }
                            else
                            {
                                for (int j = 0; j < nr; j++)
                                {
                                    d[j] = j < cols ? src[j * Bcs] : 0f;
                                }
                            }
                        }
                    }

                    for (int mp = 0; mp < mPanels; mp++)
                    {
                        float* a = A + ((long)mp * K * mr) + ((long)k0 * mr);
                        for (int g = 0; g < gCount; g++)
                        {
                            GemmKernels.Run(Isa, a, bp + ((long)g * kc * nr), kLen, tiles + ((((long)mp * NGroup) + g) * mr * nr), accumulate: k0 > 0);
                        }
                    }
                }

                for (int g = 0; g < gCount; g++)
                {
                    int n0 = (p0 + g) * nr;
                    for (int mp = 0; mp < mPanels; mp++)
                    {
                        StoreTile(tiles + ((((long)mp * NGroup) + g) * mr * nr), nr, Math.Min(mr, M - (mp * mr)), Math.Min(nr, N - n0), C + (mp * mr * Ldc) + n0, Ldc);
                    }
                }
            }
        }
    }
}

/// <summary>Small vector helpers used by the epilogues.</summary>
internal static unsafe class VecOps
{
    /// <summary>dst[j] = src[j] + s for j &lt; count.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddScalar(float* src, float s, float* dst, int count)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(s);
            for (; j + 8 <= count; j += 8)
            {
                (Vector256.Load(src + j) + vs).Store(dst + j);
            }
        }

        for (; j < count; j++)
        {
            dst[j] = src[j] + s;
        }
    }

    /// <summary>dst[j] = (src[j] + s) + r[j] for j &lt; count.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddScalarAdd(float* src, float s, float* r, float* dst, int count)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(s);
            for (; j + 8 <= count; j += 8)
            {
                (Vector256.Load(src + j) + vs + Vector256.Load(r + j)).Store(dst + j);
            }
        }

        for (; j < count; j++)
        {
            dst[j] = src[j] + s + r[j];
        }
    }
}
