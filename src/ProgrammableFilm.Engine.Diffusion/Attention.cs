using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>Single-head self-attention over the H·W tokens: x + proj(softmax(q kᵀ / sqrt(c)) v), with q, k, v from one 1x1 conv.</summary>
internal sealed unsafe class AttentionBlock(GroupNorm norm, Conv2d qkv, Conv2d proj, GemmIsa isa)
{
    public long Flops(int size)
    {
        int tokens = size * size;
        return qkv.Flops(1, size, size) + proj.Flops(1, size, size) + (2L * 2 * tokens * tokens * proj.Cout);
    }

    public void Forward(Parallelism parallel, UNetWorkspace ws, int n, TensorView x, TensorView y)
    {
        int c = proj.Cout;
        var a = ws.Scratch(0, n, c, x.H, x.W);
        norm.Forward(parallel, x, a, silu: false);
        var q = ws.Scratch(1, n, 3 * c, x.H, x.W);
        qkv.Forward(parallel, a, q);
        var o = ws.Scratch(2, n, c, x.H, x.W);
        parallel.For(n, new Job { Qkv = q, O = o, C = c, Isa = isa });
        proj.Forward(parallel, o, y, null, x);
    }

    /// <summary>row = softmax(row / scale), in place (max-subtracted; exp as in SiLU).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Softmax(float* row, int count, float scale)
    {
        float max = float.NegativeInfinity;
        for (int j = 0; j < count; j++)
        {
            row[j] /= scale;
            max = Math.Max(max, row[j]);
        }

        float sum = 0f;
        int k = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vmax = Vector256.Create(max);
            var acc = Vector256<float>.Zero;
            for (; k + 8 <= count; k += 8)
            {
                var e = FastMath.Exp(Vector256.Load(row + k) - vmax);
                e.Store(row + k);
                acc += e;
            }

            sum = Vector256.Sum(acc);
        }

        for (; k < count; k++)
        {
            row[k] = FastMath.Exp(row[k] - max);
            sum += row[k];
        }

        float inv = 1f / sum;
        for (int j = 0; j < count; j++)
        {
            row[j] *= inv;
        }
    }

    private struct Job : IRangeJob
    {
        public TensorView Qkv;
        public TensorView O;
        public int C;
        public GemmIsa Isa;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int start, int end)
        {
            int t = Qkv.Plane;
            float* packed = ThreadScratch.Get(2, Gemm.PackedASize(Isa, Math.Max(t, C), Math.Max(t, C)));
            float* scores = ThreadScratch.Get(3, (long)t * t);
            float scale = MathF.Sqrt(C);
            for (int n = start; n < end; n++)
            {
                float* q = Qkv.Channel(n, 0), k = Qkv.Channel(n, C), v = Qkv.Channel(n, 2 * C);

                // scores[i][j] = Σ_c q[c][i] k[c][j]
                Gemm.PackA(Isa, q, 1, t, t, C, packed);
                Gemm.MultiplyPackedSerial(Isa, t, t, C, packed, k, t, 1, scores, t);
                for (int i = 0; i < t; i++)
                {
                    Softmax(scores + ((long)i * t), t, scale);
                }

                // o[c][i] = Σ_j v[c][j] att[i][j]
                Gemm.PackA(Isa, v, t, 1, C, t, packed);
                Gemm.MultiplyPackedSerial(Isa, C, t, t, packed, scores, 1, t, O.Channel(n, 0), t);
            }
        }
    }
}
