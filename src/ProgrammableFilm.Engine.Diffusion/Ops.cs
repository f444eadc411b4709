using System.Runtime.CompilerServices;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>GroupNorm with an optional fused SiLU: y = SiLU?((x - mean_g) * rstd_g * gamma_c + beta_c).</summary>
internal sealed unsafe class GroupNorm(float[] gamma, float[] beta, int groups, float eps)
{
    public int Channels => gamma.Length;

    /// <summary>
    /// Normalises <paramref name="x"/> into <paramref name="y"/> (same shape; may be different batch strides). With
    /// <paramref name="modulation"/> (per image: C scales then C shifts), the result is <c>GN(x) * (1 + scale) + shift</c>
    /// before the optional SiLU.
    /// </summary>
    public void Forward(Parallelism parallel, TensorView x, TensorView y, bool silu, float* modulation = null)
    {
        if (x.C != gamma.Length || y.C != x.C || y.Plane != x.Plane || y.N != x.N || x.Padded)
        {
            throw new ArgumentException($"GroupNorm({gamma.Length}) got {x.C} channels.");
        }

        fixed (float* g = gamma, b = beta)
        {
            parallel.For(x.N * groups, new Job { X = x, Y = y, Gamma = g, Beta = b, Groups = groups, Eps = eps, Silu = silu, Modulation = modulation });
        }
    }

    private struct Job : IRangeJob
    {
        public TensorView X;
        public TensorView Y;
        public float* Gamma;
        public float* Beta;
        public int Groups;
        public float Eps;
        public bool Silu;
        public float* Modulation;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int start, int end)
        {
            int cpg = X.C / Groups;
            int plane = X.Plane;
            int count = cpg * plane;
            for (int item = start; item < end; item++)
            {
                int n = item / Groups, g = item % Groups;
                float* src = X.Channel(n, g * cpg);
                var span = new ReadOnlySpan<float>(src, count);

                // Two passes in float, fixed order (the result never depends on the thread count).
                float mean = Sum(src, count) / count;
                float var = SumSquaredDeviation(src, count, mean) / count;
                float rstd = 1f / MathF.Sqrt(var + Eps);
                for (int ci = 0; ci < cpg; ci++)
                {
                    int c = (g * cpg) + ci;
                    float scale = rstd * Gamma[c];
                    float shift = Beta[c] - (mean * scale);
                    if (Modulation != null)
                    {
                        float* m = Modulation + ((long)n * 2 * X.C);
                        scale *= 1f + m[c];
                        shift = (shift * (1f + m[c])) + m[X.C + c];
                    }

                    if (Y.Padded)
                    {
                        float* s = src + ((long)ci * plane);
                        float* d = Y.Interior(n, c);
                        for (int row = 0; row < X.H; row++)
                        {
                            Affine(s + (row * X.W), d + (row * Y.RowStride), X.W, scale, shift, Silu);
                        }
                    }
                    else
                    {
                        Affine(src + ((long)ci * plane), Y.Channel(n, c), plane, scale, shift, Silu);
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float Sum(float* x, int count)
    {
        int i = 0;
        float total = 0f;
        if (Vector512.IsHardwareAccelerated && count >= 64)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 64 <= count; i += 64)
            {
                a0 += Vector512.Load(x + i);
                a1 += Vector512.Load(x + i + 16);
                a2 += Vector512.Load(x + i + 32);
                a3 += Vector512.Load(x + i + 48);
            }

            total = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector256.IsHardwareAccelerated && count >= 32)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 32 <= count; i += 32)
            {
                a0 += Vector256.Load(x + i);
                a1 += Vector256.Load(x + i + 8);
                a2 += Vector256.Load(x + i + 16);
                a3 += Vector256.Load(x + i + 24);
            }

            total = Vector256.Sum((a0 + a1) + (a2 + a3));
        }

        for (; i < count; i++)
        {
            total += x[i];
        }

        return total;
    }

    internal static float SumSquaredDeviation(float* x, int count, float mean)
    {
        int i = 0;
        float total = 0f;
        if (Vector512.IsHardwareAccelerated && count >= 64)
        {
            var m = Vector512.Create(mean);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 64 <= count; i += 64)
            {
                var d0 = Vector512.Load(x + i) - m;
                var d1 = Vector512.Load(x + i + 16) - m;
                var d2 = Vector512.Load(x + i + 32) - m;
                var d3 = Vector512.Load(x + i + 48) - m;
                a0 += d0 * d0;
                a1 += d1 * d1;
                a2 += d2 * d2;
                a3 += d3 * d3;
            }

            total = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector256.IsHardwareAccelerated && count >= 32)
        {
            var m = Vector256.Create(mean);
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 32 <= count; i += 32)
            {
                var d0 = Vector256.Load(x + i) - m;
                var d1 = Vector256.Load(x + i + 8) - m;
                var d2 = Vector256.Load(x + i + 16) - m;
                var d3 = Vector256.Load(x + i + 24) - m;
                a0 += d0 * d0;
                a1 += d1 * d1;
                a2 += d2 * d2;
                a3 += d3 * d3;
            }

            total = Vector256.Sum((a0 + a1) + (a2 + a3));
        }

        for (; i < count; i++)
        {
            float d = x[i] - mean;
            total += d * d;
        }

        return total;
    }

    /// <summary>dst = src * scale + shift, then SiLU (z / (1 + e^-z)) when asked.</summary>
    internal static void Affine(float* src, float* dst, int count, float scale, float shift, bool silu)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            var vs = Vector512.Create(scale);
            var vb = Vector512.Create(shift);
            var one = Vector512.Create(1f);
            var two = Vector512.Create(2f);
            for (; i + 16 <= count; i += 16)
            {
                var z = (Vector512.Load(src + i) * vs) + vb;
                if (silu)
                {
                    // z / (1 + e^-z) with a 14-bit reciprocal and one Newton step (~1e-8 relative) instead of a slow divide.
                    var d = one + FastMath.Exp(-z);
                    var r = Avx512F.Reciprocal14(d);
                    r *= two - (d * r);
                    z *= r;
                }

                z.Store(dst + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(scale);
            var vb = Vector256.Create(shift);
            var one = Vector256.Create(1f);
            for (; i + 8 <= count; i += 8)
            {
                var z = (Vector256.Load(src + i) * vs) + vb;
                if (silu)
                {
                    z /= one + FastMath.Exp(-z);
                }

                z.Store(dst + i);
            }
        }

        for (; i < count; i++)
        {
            float z = (src[i] * scale) + shift;
            dst[i] = silu ? z / (1f + FastMath.Exp(-z)) : z;
        }
    }
}

/// <summary>A dense layer on small row vectors (embeddings): y = x Wᵀ + b, W stored [out, in] as in PyTorch.</summary>
internal sealed class Linear(float[] weight, float[] bias)
{
    public int Out => bias.Length;

    public int In => weight.Length / bias.Length;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        int inDim = In;
        for (int o = 0; o < bias.Length; o++)
        {
            y[o] = bias[o] + TensorPrimitives.Dot(new ReadOnlySpan<float>(weight, o * inDim, inDim), x);
        }
    }
}

/// <summary>Shape-only tensor operations on NCHW views.</summary>
internal static unsafe class TensorOps
{
    /// <summary>In-place SiLU.</summary>
    public static void Silu(Span<float> x)
    {
        for (int i = 0; i < x.Length; i++)
        {
            x[i] /= 1f + MathF.Exp(-x[i]);
        }
    }

    /// <summary>Nearest-neighbour ×2 upsampling: dst[c][2y+dy][2x+dx] = src[c][y][x].</summary>
    public static void Upsample2x(Parallelism parallel, TensorView src, TensorView dst)
    {
        if (dst.C != src.C || dst.H != 2 * src.H || dst.W != 2 * src.W || dst.N != src.N)
        {
            throw new ArgumentException("Upsample2x shape mismatch.");
        }

        parallel.For(src.N * src.C, new UpsampleJob { Src = src, Dst = dst });
    }

    /// <summary>Depth-to-space by 2 (PyTorch pixel_shuffle): dst[c][2i+dy][2j+dx] = src[c*4 + dy*2 + dx][i][j].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PixelShuffle2(TensorView src, TensorView dst)
    {
        for (int n = 0; n < src.N; n++)
        {
            for (int c = 0; c < dst.C; c++)
            {
                float* d = dst.Channel(n, c);
                for (int q = 0; q < 4; q++)
                {
                    int dy = q >> 1, dx = q & 1;
                    float* s = src.Channel(n, (c * 4) + q);
                    for (int i = 0; i < src.H; i++)
                    {
                        float* row = d + ((((2 * i) + dy) * dst.W) + dx);
                        float* srow = s + (i * src.W);
                        for (int j = 0; j < src.W; j++)
                        {
                            row[2 * j] = srow[j];
                        }
                    }
                }
            }
        }
    }

    /// <summary>Space-to-depth by 2 (PyTorch pixel_unshuffle): dst[c*4 + dy*2 + dx][i][j] = src[c][2i+dy][2j+dx].</summary>
    public static void PixelUnshuffle2(TensorView src, TensorView dst)
    {
        for (int n = 0; n < src.N; n++)
        {
            for (int c = 0; c < src.C; c++)
            {
                float* s = src.Channel(n, c);
                for (int q = 0; q < 4; q++)
                {
                    int dy = q >> 1, dx = q & 1;
                    float* d = dst.Channel(n, (c * 4) + q);
                    for (int i = 0; i < dst.H; i++)
                    {
                        float* srow = s + ((((2 * i) + dy) * src.W) + dx);
                        for (int j = 0; j < dst.W; j++)
                        {
                            d[(i * dst.W) + j] = srow[2 * j];
                        }
                    }
                }
            }
        }
    }

    /// <summary>Copies channels of <paramref name="src"/> into <paramref name="dst"/> starting at channel <paramref name="c0"/> (concat).</summary>
    public static void CopyChannels(TensorView src, TensorView dst, int c0)
    {
        long count = (long)src.C * src.Plane;
        for (int n = 0; n < src.N; n++)
        {
            Buffer.MemoryCopy(src.Image(n), dst.Channel(n, c0), count * sizeof(float), count * sizeof(float));
        }
    }

    private struct UpsampleJob : IRangeJob
    {
        public TensorView Src;
        public TensorView Dst;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int start, int end)
        {
            int h = Src.H, w = Src.W, w2 = Dst.W;
            for (int item = start; item < end; item++)
            {
                int n = item / Src.C, c = item % Src.C;
                float* s = Src.Channel(n, c);
                float* d = Dst.Channel(n, c);
                for (int y = 0; y < h; y++)
                {
                    float* row = d + (2 * y * w2);
                    for (int x = 0; x < w; x++)
                    {
                        float v = s[(y * w) + x];
                        row[2 * x] = v;
                        row[(2 * x) + 1] = v;
                    }

                    new ReadOnlySpan<float>(row, w2).CopyTo(new Span<float>(row + w2, w2));
                }
            }
        }
    }
}
