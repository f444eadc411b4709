using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>Which register-tiled micro-kernel the GEMM uses.</summary>
public enum GemmIsa
{
    /// <summary>AVX-512F: 12 × 32 tile, 24 zmm accumulators.</summary>
    Avx512,

    /// <summary>AVX2 + FMA: 6 × 16 tile, 12 ymm accumulators.</summary>
    Avx2,

    /// <summary>Portable <see cref="Vector{T}"/>: 6 × (2 × Vector&lt;float&gt;.Count) tile.</summary>
    Portable,
}

/// <summary>
/// Register-tiled SGEMM micro-kernels: <c>C[MR × NR] = Σ_k A[k][0..MR) ⊗ B[k][0..NR)</c> over packed panels, with one
/// fused multiply-add per k in ascending k order for every element. All three kernels therefore give bit-identical
/// results, and so does any partition of the output tiles over threads.
/// </summary>
internal static unsafe class GemmKernels
{
    public static GemmIsa Best =>
        Avx512F.IsSupported ? GemmIsa.Avx512 : (Avx2.IsSupported && Fma.IsSupported) ? GemmIsa.Avx2 : GemmIsa.Portable;

    public static bool IsSupported(GemmIsa isa) => isa switch
    {
        GemmIsa.Avx512 => Avx512F.IsSupported,
        GemmIsa.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        _ => true,
    };

    public static int Mr(GemmIsa isa) => isa == GemmIsa.Avx512 ? 12 : 6;

    public static int Nr(GemmIsa isa) => isa switch
    {
        GemmIsa.Avx512 => 32,
        GemmIsa.Avx2 => 16,
        _ => 2 * Vector<float>.Count,
    };

    /// <summary>
    /// Computes one MR × NR tile into <paramref name="c"/> (row stride NR) from packed A (k × MR) and B (k × NR); with
    /// <paramref name="accumulate"/> the FMA chains continue from the values in <paramref name="c"/>, so splitting K into
    /// consecutive blocks on one thread gives bit-identical results to one pass.
    /// </summary>
    public static void Run(GemmIsa isa, float* a, float* b, int k, float* c, bool accumulate = false) => Run(isa, Mr(isa), a, b, k, c, accumulate);

    /// <summary>Row-panel heights available for <paramref name="isa"/> besides <see cref="Mr(GemmIsa)"/> (AVX-512 also has 8 × 32).</summary>
    public static int MrFor(GemmIsa isa, int m) => isa == GemmIsa.Avx512 && m % 12 != 0 && m % 8 == 0 ? 8 : Mr(isa);

    /// <summary><see cref="Run(GemmIsa, float*, float*, int, float*, bool)"/> with an explicit panel height (see <see cref="MrFor"/>).</summary>
    public static void Run(GemmIsa isa, int mr, float* a, float* b, int k, float* c, bool accumulate = false)
    {
        if (isa == GemmIsa.Avx512 && mr == 8)
        {
            Kernel512x8(a, b, k, c, accumulate);
            return;
        }

        switch (isa)
        {
            case GemmIsa.Avx512:
                Kernel512(a, b, k, c, accumulate);
                break;
            case GemmIsa.Avx2:
                Kernel256(a, b, k, c, accumulate);
                break;
            default:
                KernelPortable(a, b, k, c, accumulate);
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512(float* a, float* b, int k, float* c, bool accumulate)
    {
        Vector512<float> c0_0 = Vector512<float>.Zero, c0_1 = Vector512<float>.Zero, c1_0 = Vector512<float>.Zero, c1_1 = Vector512<float>.Zero, c2_0 = Vector512<float>.Zero, c2_1 = Vector512<float>.Zero, c3_0 = Vector512<float>.Zero, c3_1 = Vector512<float>.Zero, c4_0 = Vector512<float>.Zero, c4_1 = Vector512<float>.Zero, c5_0 = Vector512<float>.Zero, c5_1 = Vector512<float>.Zero, c6_0 = Vector512<float>.Zero, c6_1 = Vector512<float>.Zero, c7_0 = Vector512<float>.Zero, c7_1 = Vector512<float>.Zero, c8_0 = Vector512<float>.Zero, c8_1 = Vector512<float>.Zero, c9_0 = Vector512<float>.Zero, c9_1 = Vector512<float>.Zero, c10_0 = Vector512<float>.Zero, c10_1 = Vector512<float>.Zero, c11_0 = Vector512<float>.Zero, c11_1 = Vector512<float>.Zero;
        if (accumulate)
        {
            c0_0 = Vector512.Load(c + 0 * 16);
            c0_1 = Vector512.Load(c + 1 * 16);
            c1_0 = Vector512.Load(c + 2 * 16);
            c1_1 = Vector512.Load(c + 3 * 16);
            c2_0 = Vector512.Load(c + 4 * 16);
            c2_1 = Vector512.Load(c + 5 * 16);
            c3_0 = Vector512.Load(c + 6 * 16);
            c3_1 = Vector512.Load(c + 7 * 16);
            c4_0 = Vector512.Load(c + 8 * 16);
            c4_1 = Vector512.Load(c + 9 * 16);
            c5_0 = Vector512.Load(c + 10 * 16);
            c5_1 = Vector512.Load(c + 11 * 16);
            c6_0 = Vector512.Load(c + 12 * 16);
            c6_1 = Vector512.Load(c + 13 * 16);
            c7_0 = Vector512.Load(c + 14 * 16);
            c7_1 = Vector512.Load(c + 15 * 16);
            c8_0 = Vector512.Load(c + 16 * 16);
            c8_1 = Vector512.Load(c + 17 * 16);
            c9_0 = Vector512.Load(c + 18 * 16);
            c9_1 = Vector512.Load(c + 19 * 16);
            c10_0 = Vector512.Load(c + 20 * 16);
            c10_1 = Vector512.Load(c + 21 * 16);
            c11_0 = Vector512.Load(c + 22 * 16);
            c11_1 = Vector512.Load(c + 23 * 16);
        }
        for (int p = 0; p < k; p++)
        {
            var b0 = Vector512.Load(b + 0);
            var b1 = Vector512.Load(b + 16);
            var a0 = Vector512.Create(a[0]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = Vector512.Create(a[1]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = Vector512.Create(a[2]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = Vector512.Create(a[3]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = Vector512.Create(a[4]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = Vector512.Create(a[5]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, b1, c5_1);
            var a6 = Vector512.Create(a[6]);
            c6_0 = Avx512F.FusedMultiplyAdd(a6, b0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, b1, c6_1);
            var a7 = Vector512.Create(a[7]);
            c7_0 = Avx512F.FusedMultiplyAdd(a7, b0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(a7, b1, c7_1);
            var a8 = Vector512.Create(a[8]);
            c8_0 = Avx512F.FusedMultiplyAdd(a8, b0, c8_0);
            c8_1 = Avx512F.FusedMultiplyAdd(a8, b1, c8_1);
            var a9 = Vector512.Create(a[9]);
            c9_0 = Avx512F.FusedMultiplyAdd(a9, b0, c9_0);
            c9_1 = Avx512F.FusedMultiplyAdd(a9, b1, c9_1);
            var a10 = Vector512.Create(a[10]);
            c10_0 = Avx512F.FusedMultiplyAdd(a10, b0, c10_0);
            c10_1 = Avx512F.FusedMultiplyAdd(a10, b1, c10_1);
            var a11 = Vector512.Create(a[11]);
            c11_0 = Avx512F.FusedMultiplyAdd(a11, b0, c11_0);
            c11_1 = Avx512F.FusedMultiplyAdd(a11, b1, c11_1);
            a += 12;
            b += 32;
        }

        c0_0.Store(c + 0);
        c0_1.Store(c + 16);
        c1_0.Store(c + 32);
        c1_1.Store(c + 48);
        c2_0.Store(c + 64);
        c2_1.Store(c + 80);
        c3_0.Store(c + 96);
        c3_1.Store(c + 112);
        c4_0.Store(c + 128);
        c4_1.Store(c + 144);
        c5_0.Store(c + 160);
        c5_1.Store(c + 176);
        c6_0.Store(c + 192);
        c6_1.Store(c + 208);
        c7_0.Store(c + 224);
        c7_1.Store(c + 240);
        c8_0.Store(c + 256);
        c8_1.Store(c + 272);
        c9_0.Store(c + 288);
        c9_1.Store(c + 304);
        c10_0.Store(c + 320);
        c10_1.Store(c + 336);
        c11_0.Store(c + 352);
        c11_1.Store(c + 368);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(float* a, float* b, int k, float* c, bool accumulate)
    {
        Vector256<float> c0_0 = Vector256<float>.Zero, c0_1 = Vector256<float>.Zero, c1_0 = Vector256<float>.Zero, c1_1 = Vector256<float>.Zero, c2_0 = Vector256<float>.Zero, c2_1 = Vector256<float>.Zero, c3_0 = Vector256<float>.Zero, c3_1 = Vector256<float>.Zero, c4_0 = Vector256<float>.Zero, c4_1 = Vector256<float>.Zero, c5_0 = Vector256<float>.Zero, c5_1 = Vector256<float>.Zero;
        if (accumulate)
        {
            c0_0 = Vector256.Load(c + 0 * 8);
            c0_1 = Vector256.Load(c + 1 * 8);
            c1_0 = Vector256.Load(c + 2 * 8);
            c1_1 = Vector256.Load(c + 3 * 8);
            c2_0 = Vector256.Load(c + 4 * 8);
            c2_1 = Vector256.Load(c + 5 * 8);
            c3_0 = Vector256.Load(c + 6 * 8);
            c3_1 = Vector256.Load(c + 7 * 8);
            c4_0 = Vector256.Load(c + 8 * 8);
            c4_1 = Vector256.Load(c + 9 * 8);
            c5_0 = Vector256.Load(c + 10 * 8);
            c5_1 = Vector256.Load(c + 11 * 8);
        }
        for (int p = 0; p < k; p++)
        {
            var b0 = Vector256.Load(b + 0);
            var b1 = Vector256.Load(b + 8);
            var a0 = Vector256.Create(a[0]);
            c0_0 = Fma.MultiplyAdd(a0, b0, c0_0);
            c0_1 = Fma.MultiplyAdd(a0, b1, c0_1);
            var a1 = Vector256.Create(a[1]);
            c1_0 = Fma.MultiplyAdd(a1, b0, c1_0);
            c1_1 = Fma.MultiplyAdd(a1, b1, c1_1);
            var a2 = Vector256.Create(a[2]);
            c2_0 = Fma.MultiplyAdd(a2, b0, c2_0);
            c2_1 = Fma.MultiplyAdd(a2, b1, c2_1);
            var a3 = Vector256.Create(a[3]);
            c3_0 = Fma.MultiplyAdd(a3, b0, c3_0);
            c3_1 = Fma.MultiplyAdd(a3, b1, c3_1);
            var a4 = Vector256.Create(a[4]);
            c4_0 = Fma.MultiplyAdd(a4, b0, c4_0);
            c4_1 = Fma.MultiplyAdd(a4, b1, c4_1);
            var a5 = Vector256.Create(a[5]);
            c5_0 = Fma.MultiplyAdd(a5, b0, c5_0);
            c5_1 = Fma.MultiplyAdd(a5, b1, c5_1);
            a += 6;
            b += 16;
        }

        c0_0.Store(c + 0);
        c0_1.Store(c + 8);
        c1_0.Store(c + 16);
        c1_1.Store(c + 24);
        c2_0.Store(c + 32);
        c2_1.Store(c + 40);
        c3_0.Store(c + 48);
        c3_1.Store(c + 56);
        c4_0.Store(c + 64);
        c4_1.Store(c + 72);
        c5_0.Store(c + 80);
        c5_1.Store(c + 88);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelPortable(float* a, float* b, int k, float* c, bool accumulate)
    {
        int w = Vector<float>.Count;
        Vector<float> c0_0 = Vector<float>.Zero, c0_1 = Vector<float>.Zero, c1_0 = Vector<float>.Zero, c1_1 = Vector<float>.Zero, c2_0 = Vector<float>.Zero, c2_1 = Vector<float>.Zero, c3_0 = Vector<float>.Zero, c3_1 = Vector<float>.Zero, c4_0 = Vector<float>.Zero, c4_1 = Vector<float>.Zero, c5_0 = Vector<float>.Zero, c5_1 = Vector<float>.Zero;
        if (accumulate)
        {
            c0_0 = Vector.Load(c + (0 * w));
            c0_1 = Vector.Load(c + (1 * w));
            c1_0 = Vector.Load(c + (2 * w));
            c1_1 = Vector.Load(c + (3 * w));
            c2_0 = Vector.Load(c + (4 * w));
            c2_1 = Vector.Load(c + (5 * w));
            c3_0 = Vector.Load(c + (6 * w));
            c3_1 = Vector.Load(c + (7 * w));
            c4_0 = Vector.Load(c + (8 * w));
            c4_1 = Vector.Load(c + (9 * w));
            c5_0 = Vector.Load(c + (10 * w));
            c5_1 = Vector.Load(c + (11 * w));
        }
        for (int p = 0; p < k; p++)
        {
            var b0 = Vector.Load(b);
            var b1 = Vector.Load(b + w);
            var a0 = new Vector<float>(a[0]);
            c0_0 = Vector.FusedMultiplyAdd(a0, b0, c0_0);
            c0_1 = Vector.FusedMultiplyAdd(a0, b1, c0_1);
            var a1 = new Vector<float>(a[1]);
            c1_0 = Vector.FusedMultiplyAdd(a1, b0, c1_0);
            c1_1 = Vector.FusedMultiplyAdd(a1, b1, c1_1);
            var a2 = new Vector<float>(a[2]);
            c2_0 = Vector.FusedMultiplyAdd(a2, b0, c2_0);
            c2_1 = Vector.FusedMultiplyAdd(a2, b1, c2_1);
            var a3 = new Vector<float>(a[3]);
            c3_0 = Vector.FusedMultiplyAdd(a3, b0, c3_0);
            c3_1 = Vector.FusedMultiplyAdd(a3, b1, c3_1);
            var a4 = new Vector<float>(a[4]);
            c4_0 = Vector.FusedMultiplyAdd(a4, b0, c4_0);
            c4_1 = Vector.FusedMultiplyAdd(a4, b1, c4_1);
            var a5 = new Vector<float>(a[5]);
            c5_0 = Vector.FusedMultiplyAdd(a5, b0, c5_0);
            c5_1 = Vector.FusedMultiplyAdd(a5, b1, c5_1);
            a += 6;
            b += 2 * w;
        }

        c0_0.Store(c + (0 * w));
        c0_1.Store(c + (1 * w));
        c1_0.Store(c + (2 * w));
        c1_1.Store(c + (3 * w));
        c2_0.Store(c + (4 * w));
        c2_1.Store(c + (5 * w));
        c3_0.Store(c + (6 * w));
        c3_1.Store(c + (7 * w));
        c4_0.Store(c + (8 * w));
        c4_1.Store(c + (9 * w));
        c5_0.Store(c + (10 * w));
        c5_1.Store(c + (11 * w));
    }

    /// <summary>True when <paramref name="isa"/> has a direct (pack-free) convolution kernel.</summary>
    public static bool HasDirect(GemmIsa isa) => isa != GemmIsa.Portable;

    /// <summary>
    /// Direct-convolution tile: like <see cref="Run"/>, but row k of B is read straight from the input as two vectors at
    /// <c>b0 + koff[k]</c> and <c>b1 + koff[k]</c> (NR/2 pixels each), so no B panel is packed. Same FMA chain per element.
    /// </summary>
    public static void RunDirect(GemmIsa isa, int mr, float* a, float* b0, float* b1, int* koff, int k, float* c, bool accumulate)
    {
        if (isa == GemmIsa.Avx512 && mr == 8)
        {
            Direct512x8(a, b0, b1, koff, k, c, accumulate);
        }
        else if (isa == GemmIsa.Avx512)
        {
            Direct512(a, b0, b1, koff, k, c, accumulate);
        }
        else
        {
            Direct256(a, b0, b1, koff, k, c, accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Direct512(float* a, float* b0, float* b1, int* koff, int k, float* c, bool accumulate)
    {
        Vector512<float> c0_0 = Vector512<float>.Zero, c0_1 = Vector512<float>.Zero, c1_0 = Vector512<float>.Zero, c1_1 = Vector512<float>.Zero, c2_0 = Vector512<float>.Zero, c2_1 = Vector512<float>.Zero, c3_0 = Vector512<float>.Zero, c3_1 = Vector512<float>.Zero, c4_0 = Vector512<float>.Zero, c4_1 = Vector512<float>.Zero, c5_0 = Vector512<float>.Zero, c5_1 = Vector512<float>.Zero, c6_0 = Vector512<float>.Zero, c6_1 = Vector512<float>.Zero, c7_0 = Vector512<float>.Zero, c7_1 = Vector512<float>.Zero, c8_0 = Vector512<float>.Zero, c8_1 = Vector512<float>.Zero, c9_0 = Vector512<float>.Zero, c9_1 = Vector512<float>.Zero, c10_0 = Vector512<float>.Zero, c10_1 = Vector512<float>.Zero, c11_0 = Vector512<float>.Zero, c11_1 = Vector512<float>.Zero;
        if (accumulate)
        {
            c0_0 = Vector512.Load(c + 0);
            c0_1 = Vector512.Load(c + 16);
            c1_0 = Vector512.Load(c + 32);
            c1_1 = Vector512.Load(c + 48);
            c2_0 = Vector512.Load(c + 64);
            c2_1 = Vector512.Load(c + 80);
            c3_0 = Vector512.Load(c + 96);
            c3_1 = Vector512.Load(c + 112);
            c4_0 = Vector512.Load(c + 128);
            c4_1 = Vector512.Load(c + 144);
            c5_0 = Vector512.Load(c + 160);
            c5_1 = Vector512.Load(c + 176);
            c6_0 = Vector512.Load(c + 192);
            c6_1 = Vector512.Load(c + 208);
            c7_0 = Vector512.Load(c + 224);
            c7_1 = Vector512.Load(c + 240);
            c8_0 = Vector512.Load(c + 256);
            c8_1 = Vector512.Load(c + 272);
            c9_0 = Vector512.Load(c + 288);
            c9_1 = Vector512.Load(c + 304);
            c10_0 = Vector512.Load(c + 320);
            c10_1 = Vector512.Load(c + 336);
            c11_0 = Vector512.Load(c + 352);
            c11_1 = Vector512.Load(c + 368);
        }

        for (int p = 0; p < k; p++)
        {
            int o = koff[p];
            var v0 = Vector512.Load(b0 + o);
            var v1 = Vector512.Load(b1 + o);
            var a0 = Vector512.Create(a[0]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, v0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, v1, c0_1);
            var a1 = Vector512.Create(a[1]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, v0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, v1, c1_1);
            var a2 = Vector512.Create(a[2]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, v0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, v1, c2_1);
            var a3 = Vector512.Create(a[3]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, v0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, v1, c3_1);
            var a4 = Vector512.Create(a[4]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, v0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, v1, c4_1);
            var a5 = Vector512.Create(a[5]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, v0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, v1, c5_1);
            var a6 = Vector512.Create(a[6]);
            c6_0 = Avx512F.FusedMultiplyAdd(a6, v0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, v1, c6_1);
            var a7 = Vector512.Create(a[7]);
            c7_0 = Avx512F.FusedMultiplyAdd(a7, v0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(a7, v1, c7_1);
            var a8 = Vector512.Create(a[8]);
            c8_0 = Avx512F.FusedMultiplyAdd(a8, v0, c8_0);
            c8_1 = Avx512F.FusedMultiplyAdd(a8, v1, c8_1);
            var a9 = Vector512.Create(a[9]);
            c9_0 = Avx512F.FusedMultiplyAdd(a9, v0, c9_0);
            c9_1 = Avx512F.FusedMultiplyAdd(a9, v1, c9_1);
            var a10 = Vector512.Create(a[10]);
            c10_0 = Avx512F.FusedMultiplyAdd(a10, v0, c10_0);
            c10_1 = Avx512F.FusedMultiplyAdd(a10, v1, c10_1);
            var a11 = Vector512.Create(a[11]);
            c11_0 = Avx512F.FusedMultiplyAdd(a11, v0, c11_0);
            c11_1 = Avx512F.FusedMultiplyAdd(a11, v1, c11_1);
            a += 12;
        }

        c0_0.Store(c + 0);
        c0_1.Store(c + 16);
        c1_0.Store(c + 32);
        c1_1.Store(c + 48);
        c2_0.Store(c + 64);
        c2_1.Store(c + 80);
        c3_0.Store(c + 96);
        c3_1.Store(c + 112);
        c4_0.Store(c + 128);
        c4_1.Store(c + 144);
        c5_0.Store(c + 160);
        c5_1.Store(c + 176);
        c6_0.Store(c + 192);
        c6_1.Store(c + 208);
        c7_0.Store(c + 224);
        c7_1.Store(c + 240);
        c8_0.Store(c + 256);
        c8_1.Store(c + 272);
        c9_0.Store(c + 288);
        c9_1.Store(c + 304);
        c10_0.Store(c + 320);
        c10_1.Store(c + 336);
        c11_0.Store(c + 352);
        c11_1.Store(c + 368);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Direct256(float* a, float* b0, float* b1, int* koff, int k, float* c, bool accumulate)
    {
        Vector256<float> c0_0 = Vector256<float>.Zero, c0_1 = Vector256<float>.Zero, c1_0 = Vector256<float>.Zero, c1_1 = Vector256<float>.Zero, c2_0 = Vector256<float>.Zero, c2_1 = Vector256<float>.Zero, c3_0 = Vector256<float>.Zero, c3_1 = Vector256<float>.Zero, c4_0 = Vector256<float>.Zero, c4_1 = Vector256<float>.Zero, c5_0 = Vector256<float>.Zero, c5_1 = Vector256<float>.Zero;
        if (accumulate)
        {
            c0_0 = Vector256.Load(c + 0);
            c0_1 = Vector256.Load(c + 8);
            c1_0 = Vector256.Load(c + 16);
            c1_1 = Vector256.Load(c + 24);
            c2_0 = Vector256.Load(c + 32);
            c2_1 = Vector256.Load(c + 40);
            c3_0 = Vector256.Load(c + 48);
            c3_1 = Vector256.Load(c + 56);
            c4_0 = Vector256.Load(c + 64);
            c4_1 = Vector256.Load(c + 72);
            c5_0 = Vector256.Load(c + 80);
            c5_1 = Vector256.Load(c + 88);
        }

        for (int p = 0; p < k; p++)
        {
            int o = koff[p];
            var v0 = Vector256.Load(b0 + o);
            var v1 = Vector256.Load(b1 + o);
            var a0 = Vector256.Create(a[0]);
            c0_0 = Fma.MultiplyAdd(a0, v0, c0_0);
            c0_1 = Fma.MultiplyAdd(a0, v1, c0_1);
            var a1 = Vector256.Create(a[1]);
            c1_0 = Fma.MultiplyAdd(a1, v0, c1_0);
            c1_1 = Fma.MultiplyAdd(a1, v1, c1_1);
            var a2 = Vector256.Create(a[2]);
            c2_0 = Fma.MultiplyAdd(a2, v0, c2_0);
            c2_1 = Fma.MultiplyAdd(a2, v1, c2_1);
            var a3 = Vector256.Create(a[3]);
            c3_0 = Fma.MultiplyAdd(a3, v0, c3_0);
            c3_1 = Fma.MultiplyAdd(a3, v1, c3_1);
            var a4 = Vector256.Create(a[4]);
            c4_0 = Fma.MultiplyAdd(a4, v0, c4_0);
            c4_1 = Fma.MultiplyAdd(a4, v1, c4_1);
            var a5 = Vector256.Create(a[5]);
            c5_0 = Fma.MultiplyAdd(a5, v0, c5_0);
            c5_1 = Fma.MultiplyAdd(a5, v1, c5_1);
            a += 6;
        }

        c0_0.Store(c + 0);
        c0_1.Store(c + 8);
        c1_0.Store(c + 16);
        c1_1.Store(c + 24);
        c2_0.Store(c + 32);
        c2_1.Store(c + 40);
        c3_0.Store(c + 48);
        c3_1.Store(c + 56);
        c4_0.Store(c + 64);
        c4_1.Store(c + 72);
        c5_0.Store(c + 80);
        c5_1.Store(c + 88);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512x8(float* a, float* b, int k, float* c, bool accumulate)
    {
        Vector512<float> c0_0 = Vector512<float>.Zero, c0_1 = Vector512<float>.Zero, c1_0 = Vector512<float>.Zero, c1_1 = Vector512<float>.Zero, c2_0 = Vector512<float>.Zero, c2_1 = Vector512<float>.Zero, c3_0 = Vector512<float>.Zero, c3_1 = Vector512<float>.Zero, c4_0 = Vector512<float>.Zero, c4_1 = Vector512<float>.Zero, c5_0 = Vector512<float>.Zero, c5_1 = Vector512<float>.Zero, c6_0 = Vector512<float>.Zero, c6_1 = Vector512<float>.Zero, c7_0 = Vector512<float>.Zero, c7_1 = Vector512<float>.Zero;
        if (accumulate)
        {
            c0_0 = Vector512.Load(c + 0);
            c0_1 = Vector512.Load(c + 16);
            c1_0 = Vector512.Load(c + 32);
            c1_1 = Vector512.Load(c + 48);
            c2_0 = Vector512.Load(c + 64);
            c2_1 = Vector512.Load(c + 80);
            c3_0 = Vector512.Load(c + 96);
            c3_1 = Vector512.Load(c + 112);
            c4_0 = Vector512.Load(c + 128);
            c4_1 = Vector512.Load(c + 144);
            c5_0 = Vector512.Load(c + 160);
            c5_1 = Vector512.Load(c + 176);
            c6_0 = Vector512.Load(c + 192);
            c6_1 = Vector512.Load(c + 208);
            c7_0 = Vector512.Load(c + 224);
            c7_1 = Vector512.Load(c + 240);
        }

        for (int p = 0; p < k; p++)
        {
            var v0 = Vector512.Load(b);
            var v1 = Vector512.Load(b + 16);
            var a0 = Vector512.Create(a[0]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, v0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, v1, c0_1);
            var a1 = Vector512.Create(a[1]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, v0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, v1, c1_1);
            var a2 = Vector512.Create(a[2]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, v0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, v1, c2_1);
            var a3 = Vector512.Create(a[3]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, v0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, v1, c3_1);
            var a4 = Vector512.Create(a[4]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, v0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, v1, c4_1);
            var a5 = Vector512.Create(a[5]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, v0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, v1, c5_1);
            var a6 = Vector512.Create(a[6]);
            c6_0 = Avx512F.FusedMultiplyAdd(a6, v0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, v1, c6_1);
            var a7 = Vector512.Create(a[7]);
            c7_0 = Avx512F.FusedMultiplyAdd(a7, v0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(a7, v1, c7_1);
            a += 8;
            b += 32;
        }

        c0_0.Store(c + 0);
        c0_1.Store(c + 16);
        c1_0.Store(c + 32);
        c1_1.Store(c + 48);
        c2_0.Store(c + 64);
        c2_1.Store(c + 80);
        c3_0.Store(c + 96);
        c3_1.Store(c + 112);
        c4_0.Store(c + 128);
        c4_1.Store(c + 144);
        c5_0.Store(c + 160);
        c5_1.Store(c + 176);
        c6_0.Store(c + 192);
        c6_1.Store(c + 208);
        c7_0.Store(c + 224);
        c7_1.Store(c + 240);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Direct512x8(float* a, float* b0, float* b1, int* koff, int k, float* c, bool accumulate)
    {
        Vector512<float> c0_0 = Vector512<float>.Zero, c0_1 = Vector512<float>.Zero, c1_0 = Vector512<float>.Zero, c1_1 = Vector512<float>.Zero, c2_0 = Vector512<float>.Zero, c2_1 = Vector512<float>.Zero, c3_0 = Vector512<float>.Zero, c3_1 = Vector512<float>.Zero, c4_0 = Vector512<float>.Zero, c4_1 = Vector512<float>.Zero, c5_0 = Vector512<float>.Zero, c5_1 = Vector512<float>.Zero, c6_0 = Vector512<float>.Zero, c6_1 = Vector512<float>.Zero, c7_0 = Vector512<float>.Zero, c7_1 = Vector512<float>.Zero;
        if (accumulate)
        {
            c0_0 = Vector512.Load(c + 0);
            c0_1 = Vector512.Load(c + 16);
            c1_0 = Vector512.Load(c + 32);
            c1_1 = Vector512.Load(c + 48);
            c2_0 = Vector512.Load(c + 64);
            c2_1 = Vector512.Load(c + 80);
            c3_0 = Vector512.Load(c + 96);
            c3_1 = Vector512.Load(c + 112);
            c4_0 = Vector512.Load(c + 128);
            c4_1 = Vector512.Load(c + 144);
            c5_0 = Vector512.Load(c + 160);
            c5_1 = Vector512.Load(c + 176);
            c6_0 = Vector512.Load(c + 192);
            c6_1 = Vector512.Load(c + 208);
            c7_0 = Vector512.Load(c + 224);
            c7_1 = Vector512.Load(c + 240);
        }

        for (int p = 0; p < k; p++)
        {
            int o = koff[p];
            var v0 = Vector512.Load(b0 + o);
            var v1 = Vector512.Load(b1 + o);
            var a0 = Vector512.Create(a[0]);
            c0_0 = Avx512F.FusedMultiplyAdd(a0, v0, c0_0);
            c0_1 = Avx512F.FusedMultiplyAdd(a0, v1, c0_1);
            var a1 = Vector512.Create(a[1]);
            c1_0 = Avx512F.FusedMultiplyAdd(a1, v0, c1_0);
            c1_1 = Avx512F.FusedMultiplyAdd(a1, v1, c1_1);
            var a2 = Vector512.Create(a[2]);
            c2_0 = Avx512F.FusedMultiplyAdd(a2, v0, c2_0);
            c2_1 = Avx512F.FusedMultiplyAdd(a2, v1, c2_1);
            var a3 = Vector512.Create(a[3]);
            c3_0 = Avx512F.FusedMultiplyAdd(a3, v0, c3_0);
            c3_1 = Avx512F.FusedMultiplyAdd(a3, v1, c3_1);
            var a4 = Vector512.Create(a[4]);
            c4_0 = Avx512F.FusedMultiplyAdd(a4, v0, c4_0);
            c4_1 = Avx512F.FusedMultiplyAdd(a4, v1, c4_1);
            var a5 = Vector512.Create(a[5]);
            c5_0 = Avx512F.FusedMultiplyAdd(a5, v0, c5_0);
            c5_1 = Avx512F.FusedMultiplyAdd(a5, v1, c5_1);
            var a6 = Vector512.Create(a[6]);
            c6_0 = Avx512F.FusedMultiplyAdd(a6, v0, c6_0);
            c6_1 = Avx512F.FusedMultiplyAdd(a6, v1, c6_1);
            var a7 = Vector512.Create(a[7]);
            c7_0 = Avx512F.FusedMultiplyAdd(a7, v0, c7_0);
            c7_1 = Avx512F.FusedMultiplyAdd(a7, v1, c7_1);
            a += 8;
        }

        c0_0.Store(c + 0);
        c0_1.Store(c + 16);
        c1_0.Store(c + 32);
        c1_1.Store(c + 48);
        c2_0.Store(c + 64);
        c2_1.Store(c + 80);
        c3_0.Store(c + 96);
        c3_1.Store(c + 112);
        c4_0.Store(c + 128);
        c4_1.Store(c + 144);
        c5_0.Store(c + 160);
        c5_1.Store(c + 176);
        c6_0.Store(c + 192);
        c6_1.Store(c + 208);
        c7_0.Store(c + 224);
        c7_1.Store(c + 240);
    }
}
