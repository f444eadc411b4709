using ProgrammableFilm.Engine.Diffusion;
using ProgrammableFilm.Engine.Diffusion.Tests;
using Xunit.Abstractions;

namespace ProgrammableFilm.Engine.Torch.Tests;

/// <summary>The engine quality tests (colour, background, motion, segment flicker) on the TorchSharp engine.</summary>
public sealed class TorchQualityTests(TorchFixture fixture, ITestOutputHelper output) : QualityTestsBase(output), IClassFixture<TorchFixture>
{
    protected override IRenderEngine CreateEngine() => new DiffusionEngine(fixture.Torch);
}
