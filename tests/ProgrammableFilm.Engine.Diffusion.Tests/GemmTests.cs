namespace ProgrammableFilm.Engine.Diffusion.Tests;

public sealed unsafe class GemmTests
{
    /// <summary>
    /// The kernels this CPU can run. Cases for the others are not generated rather than passed vacuously, so the test
    /// list itself shows what was checked (an AVX2-only machine lists no AVX-512 cases).
    /// </summary>
    internal static GemmIsa[] SupportedIsas { get; } = [.. new[] { GemmIsa.Avx512, GemmIsa.Avx2, GemmIsa.Portable }.Where(GemmKernels.IsSupported)];

    public static TheoryData<GemmIsa, int, int, int> Sizes()
    {
        var data = new TheoryData<GemmIsa, int, int, int>();
        foreach (var isa in SupportedIsas)
        {
            foreach (var (m, n, k) in new[] { (1, 1, 1), (13, 33, 7), (12, 32, 64), (25, 70, 129), (96, 100, 864), (5, 257, 3), (37, 17, 300) })
            {
                data.Add(isa, m, n, k);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Sgemm_matches_naive_reference_for_awkward_sizes(GemmIsa isa, int m, int n, int k)
    {
        var rng = new Random(m * 1000 + n * 10 + k);
        var a = RandomArray(rng, m * k);
        var b = RandomArray(rng, k * n);
        var c = new float[m * n];
        fixed (float* pa = a, pb = b, pc = c)
        {
            Gemm.Multiply(new Parallelism(2), isa, m, n, k, pa, k, 1, pb, n, 1, pc, n);
        }

        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    sum += (double)a[i * k + p] * b[p * n + j];
                }

                Assert.True(Math.Abs(sum - c[i * n + j]) <= 1e-4 * Math.Sqrt(k) + 1e-5, $"({i},{j}): {c[i * n + j]} vs {sum}");
            }
        }
    }

    [Fact]
    public void Sgemm_strided_operands_and_all_kernels_agree_bit_for_bit()
    {
        var rng = new Random(7);
        int m = 29, n = 45, k = 77;
        var a = RandomArray(rng, m * k);
        var b = RandomArray(rng, k * n);
        float[]? first = null;
        foreach (var isa in SupportedIsas)
        {
            foreach (int threads in new[] { 1, 2, 3 })
            {
                var c = new float[m * n];
                fixed (float* pa = a, pb = b, pc = c)
                {
                    // A read transposed from a k-major layout would be the same numbers; here B is read column-strided.
                    var bt = new float[n * k];
                    for (int p = 0; p < k; p++)
                    {
                        for (int j = 0; j < n; j++)
                        {
                            bt[j * k + p] = b[p * n + j];
                        }
                    }

                    fixed (float* pbt = bt)
                    {
                        Gemm.Multiply(new Parallelism(threads), isa, m, n, k, pa, k, 1, pbt, 1, k, pc, n);
                    }
                }

                first ??= c;
                Assert.Equal(first, c);
            }
        }
    }

    internal static float[] RandomArray(Random rng, int count)
    {
        var x = new float[count];
        for (int i = 0; i < count; i++)
        {
            x[i] = (float)(rng.NextDouble() * 2 - 1);
        }

        return x;
    }
}
