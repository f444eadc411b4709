using ProgrammableFilm.Engine.Diffusion;
using ProgrammableFilm.Engine.Diffusion.Tests;
using Xunit.Abstractions;

namespace ProgrammableFilm.Engine.Torch.Tests;

/// <summary>The TorchSharp network and sampler against the PyTorch references in models/reference (docs/model.md).</summary>
public sealed class TorchParityTests(TorchFixture fixture, ITestOutputHelper output) : IClassFixture<TorchFixture>
{
    [Fact]
    public void Torch_unet_forward_matches_pytorch_reference()
    {
        using var r = ParityTests.OpenReference("unet_forward");
        var t = r.ReadInt64("t").Select(x => (float)x).ToArray();
        var cond = ParityTests.Conditioning(r, t);
        var model = fixture.Torch;
        Assert.Equal("cpu", model.DeviceInfo.Device);
        Assert.Equal("fp32", model.DeviceInfo.Precision);

        var emb = model.Embedding(cond);
        var embRef = r.ReadSingle("emb");
        double embErr = Metrics.MaxAbsRelative(emb, embRef);
        var v = model.Forward(r.ReadSingle("x_t"), r.ReadSingle("A"), r.ReadSingle("B"), r.ReadSingle("layout"), cond);
        var vRef = r.ReadSingle("v");
        double err = Metrics.MaxAbsRelative(v, vRef);
        output.WriteLine($"[torch {model.DeviceInfo.Device} {model.DeviceInfo.Precision}] emb max-abs-diff/max-abs-ref = {embErr:E3}; v max-abs-diff/max-abs-ref = {err:E3}, L2 rel = {Metrics.L2Relative(v, vRef):E3}");
        Assert.True(embErr <= 1e-4, $"emb relative error {embErr}");
        Assert.True(err <= 1e-4, $"v relative error {err}");
    }

    [Fact]
    public void Torch_ddim_sampling_from_committed_noise_matches_pytorch_reference()
    {
        using var r = ParityTests.OpenReference("ddim_sample");
        var cond = ParityTests.Conditioning(r, null);
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
        var got = fixture.Torch.Sample(frames, new SamplerSettings(steps, guidance), null, CancellationToken.None).SelectMany(x => x).ToArray();
        var reference = r.ReadSingle("x0");
        double err = Metrics.MaxAbsRelative(got, reference);
        output.WriteLine($"[torch] DDIM ({steps} steps, g={guidance}) x0 max-abs-diff/max-abs-ref = {err:E3}, L2 rel = {Metrics.L2Relative(got, reference):E3}");
        Assert.True(err <= 1e-3, $"x0 relative error {err}");

        // One frame at a time gives the same frames as the batch (every row is independent).
        var single = fixture.Torch.Sample(frames, new SamplerSettings(steps, guidance, MaxFrameBatch: 1), null, CancellationToken.None).SelectMany(x => x).ToArray();
        Assert.True(Metrics.MaxAbsRelative(single, got) <= 1e-5);
    }
}
