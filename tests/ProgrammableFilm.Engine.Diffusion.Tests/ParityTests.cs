using Xunit.Abstractions;

namespace ProgrammableFilm.Engine.Diffusion.Tests;

public sealed unsafe class ParityTests(ITestOutputHelper output)
{
    private static readonly StrongBox<float[]> FirstRun = new();

    internal static SafetensorsFile OpenReference(string name) =>
        SafetensorsFile.Open(ModelLocator.FindRequired($"models/reference/{name}.safetensors"));

    internal static SafetensorsFile OpenWeights() => SafetensorsFile.Open(ModelLocator.FindRequired());

    internal static UNetConditioning[] Conditioning(SafetensorsFile r, float[]? timesteps)
    {
        var slots = r.ReadInt64("slots");
        var s = r.ReadSingle("s");
        var alpha = r.ReadSingle("alpha");
        var m = r.ReadSingle("m");
        return [.. Enumerable.Range(0, s.Length).Select(i => new UNetConditioning(
            timesteps?[i] ?? 0f, (int)slots[i * 4], (int)slots[i * 4 + 1], (int)slots[i * 4 + 2], (int)slots[i * 4 + 3], s[i], alpha[i], m[i]))];
    }

    public static TheoryData<GemmIsa> Isas() => [.. GemmTests.SupportedIsas];

    [Theory]
    [MemberData(nameof(Isas))]
    public void Unet_forward_matches_pytorch_reference(GemmIsa isa)
    {
        using var weights = OpenWeights();
        using var r = OpenReference("unet_forward");
        using var net = new UNet(weights, isa);
        var t = r.ReadInt64("t").Select(x => (float)x).ToArray();
        var cond = Conditioning(r, t);
        int n = cond.Length;
        using var ws = new UNetWorkspace(net.Config, n, net.Isa);
        var xt = r.ReadSingle("x_t");
        var a = r.ReadSingle("A");
        var b = r.ReadSingle("B");
        var layout = r.ReadSingle("layout");
        Assert.True(net.Config.Layout, "the committed model takes the object's planned box as its tenth input plane");
        int plane = 3 * 64 * 64, layoutPlane = 64 * 64;
        var input = ws.Input;
        for (int i = 0; i < n; i++)
        {
            xt.AsSpan(i * plane, plane).CopyTo(new Span<float>(input.Channel(i, 0), plane));
            a.AsSpan(i * plane, plane).CopyTo(new Span<float>(input.Channel(i, 3), plane));
            b.AsSpan(i * plane, plane).CopyTo(new Span<float>(input.Channel(i, 6), plane));
            layout.AsSpan(i * layoutPlane, layoutPlane).CopyTo(new Span<float>(input.Channel(i, 9), layoutPlane));
        }

        net.Forward(new Parallelism(2), ws, n, cond);

        var embRef = r.ReadSingle("emb");
        var embErr = Metrics.MaxAbsRelative(ws.Emb.AsSpan(0, embRef.Length), embRef);
        var v = new ReadOnlySpan<float>(ws.Output.Data, n * plane);
        var vRef = r.ReadSingle("v");
        var err = Metrics.MaxAbsRelative(v, vRef);
        output.WriteLine($"[{net.Isa}] emb max-abs-diff/max-abs-ref = {embErr:E3}; v max-abs-diff/max-abs-ref = {err:E3}, L2 rel = {Metrics.L2Relative(v, vRef):E3}");
        Assert.True(embErr <= 1e-4, $"emb relative error {embErr}");
        Assert.True(err <= 1e-4, $"v relative error {err}");
    }

    [Fact]
    public void Cosine_schedule_matches_reference_bit_for_bit()
    {
        using var r = OpenReference("unet_forward");
        Assert.Equal(r.ReadSingle("alpha_bar"), CosineSchedule.AlphaBar(1000));
        Assert.Equal([999, 949, 899], CosineSchedule.Timesteps(20, 1000)[..3]);
        Assert.Equal(49, CosineSchedule.Timesteps(20, 1000)[^1]);
    }

    [Theory]
    [InlineData(1, 8)]
    [InlineData(2, 1)]
    [InlineData(4, 1)]
    public void Ddim_sampling_from_committed_noise_matches_pytorch_reference(int threads, int frameBatch)
    {
        using var model = DiffusionModel.Load(ModelLocator.FindRequired(), new DiffusionModelOptions { Threads = threads, MaxFrameBatch = frameBatch });
        using var r = OpenReference("ddim_sample");
        var cond = Conditioning(r, null);
        int plane = 3 * 64 * 64, layoutPlane = 64 * 64;
        var noise = r.ReadSingle("noise");
        var a = r.ReadSingle("A");
        var b = r.ReadSingle("B");
        var layout = r.ReadSingle("layout");
        var frames = Enumerable.Range(0, cond.Length).Select(i => new FrameSpec(
            noise.AsSpan(i * plane, plane).ToArray(), cond[i], a.AsSpan(i * plane, plane).ToArray(), b.AsSpan(i * plane, plane).ToArray(),
            Layout: layout.AsSpan(i * layoutPlane, layoutPlane).ToArray())).ToList();
        int steps = (int)r.ReadInt64("steps")[0];
        float guidance = r.ReadSingle("guidance")[0];
        var x0 = model.Sample(frames, new SamplerSettings(steps, guidance), null, CancellationToken.None);
        var got = x0.SelectMany(x => x).ToArray();
        var reference = r.ReadSingle("x0");
        double err = Metrics.MaxAbsRelative(got, reference);
        output.WriteLine($"DDIM ({steps} steps, g={guidance}) x0 max-abs-diff/max-abs-ref = {err:E3}, L2 rel = {Metrics.L2Relative(got, reference):E3}");
        Assert.True(err <= 1e-3, $"x0 relative error {err}");

        // Every parallel mode (serial, image-parallel, operator-parallel) computes the same bits.
        lock (FirstRun)
        {
            FirstRun.Value ??= got;
            Assert.Equal(FirstRun.Value, got);
        }
    }
}

internal sealed class StrongBox<T>
{
    public T? Value { get; set; }
}

internal static class Metrics
{
    /// <summary>max |a - b| / max |b|.</summary>
    public static double MaxAbsRelative(ReadOnlySpan<float> a, ReadOnlySpan<float> reference)
    {
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs((double)a[i] - reference[i]));
            maxRef = Math.Max(maxRef, Math.Abs((double)reference[i]));
        }

        return maxDiff / maxRef;
    }

    /// <summary>‖a - b‖₂ / ‖b‖₂.</summary>
    public static double L2Relative(ReadOnlySpan<float> a, ReadOnlySpan<float> reference)
    {
        double d = 0, r = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double e = (double)a[i] - reference[i];
            d += e * e;
            r += (double)reference[i] * reference[i];
        }

        return Math.Sqrt(d / r);
    }
}
