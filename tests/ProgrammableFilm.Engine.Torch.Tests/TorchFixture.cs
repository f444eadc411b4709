using ProgrammableFilm.Engine.Diffusion;

namespace ProgrammableFilm.Engine.Torch.Tests;

/// <summary>
/// One TorchSharp model (CPU, fp32, 2 threads) and one native model per test class run: loading LibTorch costs about a
/// second, the weights are a few MB.
/// </summary>
public sealed class TorchFixture : IDisposable
{
    private readonly Lazy<TorchDiffusionModel> _torch = new(() =>
        TorchDiffusionModel.Load(ModelLocator.FindRequired(), new TorchEngineOptions { Device = "cpu", Threads = 2, MaxFrameBatch = 8 }));

    private readonly Lazy<DiffusionModel> _native = new(() =>
        DiffusionModel.Load(ModelLocator.FindRequired(), new DiffusionModelOptions { Threads = 2, MaxFrameBatch = 8 }));

    public TorchDiffusionModel Torch => _torch.Value;

    public DiffusionModel Native => _native.Value;

    public void Dispose()
    {
        if (_torch.IsValueCreated)
        {
            _torch.Value.Dispose();
        }

        if (_native.IsValueCreated)
        {
            _native.Value.Dispose();
        }
    }
}
