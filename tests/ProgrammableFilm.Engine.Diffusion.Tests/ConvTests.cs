namespace ProgrammableFilm.Engine.Diffusion.Tests;

public sealed unsafe class ConvTests
{
    public static TheoryData<GemmIsa, int, int, int, int, int, int, bool> Shapes()
    {
        var data = new TheoryData<GemmIsa, int, int, int, int, int, int, bool>();
        foreach (var isa in GemmTests.SupportedIsas)
        {
            // isa, n, cin, cout, size, kernel, stride
            data.Add(isa, 2, 5, 7, 9, 3, 1, false);
            data.Add(isa, 2, 8, 12, 32, 3, 1, false);
            data.Add(isa, 1, 6, 13, 16, 3, 2, false);
            data.Add(isa, 3, 4, 5, 7, 3, 2, false);
            data.Add(isa, 2, 9, 11, 8, 1, 1, false);
            data.Add(isa, 1, 3, 24, 5, 1, 1, false);
            data.Add(isa, 2, 7, 25, 16, 1, 1, false);
            data.Add(isa, 2, 5, 12, 32, 1, 1, false);
            data.Add(isa, 2, 5, 40, 16, 3, 2, false);
            if (GemmKernels.HasDirect(isa))
            {
                // Padded inputs take the direct (pack-free) path.
                data.Add(isa, 2, 5, 13, 32, 3, 1, true);
                data.Add(isa, 3, 9, 24, 16, 3, 1, true);
                data.Add(isa, 2, 6, 16, 16, 3, 1, true);
                data.Add(isa, 1, 4, 32, 32, 3, 1, true);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Conv_matches_naive_reference(GemmIsa isa, int n, int cin, int cout, int size, int ks, int stride, bool padded)
    {
        int pad = ks / 2;
        var rng = new Random(cin * 31 + cout);
        var w = GemmTests.RandomArray(rng, cout * cin * ks * ks);
        var bias = GemmTests.RandomArray(rng, cout);
        var add = GemmTests.RandomArray(rng, n * cout);
        var x = GemmTests.RandomArray(rng, n * cin * size * size);
        using var conv = new Conv2d(isa, w, bias, cin, cout, ks, stride, pad);
        int outSize = conv.OutSize(size);
        var res = GemmTests.RandomArray(rng, n * cout * outSize * outSize);
        int ps = size + 2;
        using var xb = new NativeBuffer(padded ? n * cin * ps * ps : x.Length);
        using var yb = new NativeBuffer(n * cout * outSize * outSize);
        using var rb = new NativeBuffer(res.Length);
        var xv = new TensorView(xb.Pointer, n, cin, size, size, padded: padded);
        for (int b = 0; b < n; b++)
        {
            for (int c = 0; c < cin; c++)
            {
                for (int row = 0; row < size; row++)
                {
                    x.AsSpan(((b * cin + c) * size + row) * size, size).CopyTo(new Span<float>(xv.Interior(b, c) + row * xv.RowStride, size));
                }
            }
        }

        res.CopyTo(rb.AsSpan());
        fixed (float* padd = add)
        {
            conv.Forward(
                new Parallelism(2),
                xv,
                new TensorView(yb.Pointer, n, cout, outSize, outSize),
                padd,
                new TensorView(rb.Pointer, n, cout, outSize, outSize));
        }

        var y = yb.AsSpan();
        for (int b = 0; b < n; b++)
        {
            for (int co = 0; co < cout; co++)
            {
                for (int oy = 0; oy < outSize; oy++)
                {
                    for (int ox = 0; ox < outSize; ox++)
                    {
                        double sum = bias[co] + add[b * cout + co];
                        for (int ci = 0; ci < cin; ci++)
                        {
                            for (int ky = 0; ky < ks; ky++)
                            {
                                for (int kx = 0; kx < ks; kx++)
                                {
                                    int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
                                    if (iy >= 0 && iy < size && ix >= 0 && ix < size)
                                    {
                                        sum += (double)w[((co * cin + ci) * ks + ky) * ks + kx] * x[((b * cin + ci) * size + iy) * size + ix];
                                    }
                                }
                            }
                        }

                        int o = ((b * cout + co) * outSize + oy) * outSize + ox;
                        sum += res[o];
                        Assert.True(Math.Abs(sum - y[o]) < 1e-4, $"n{b} c{co} ({oy},{ox}): {y[o]} vs {sum}");
                    }
                }
            }
        }
    }
}
