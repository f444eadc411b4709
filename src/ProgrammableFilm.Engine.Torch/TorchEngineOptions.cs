using ProgrammableFilm.Engine.Diffusion;
using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Torch;

/// <summary>How a TorchSharp diffusion engine finds its model and picks its device.</summary>
public sealed record TorchEngineOptions
{
    /// <summary>The weights file (the same safetensors file the native engine reads); null finds the default model.</summary>
    public string? ModelPath { get; init; }

    /// <summary><c>auto</c> (CUDA when present, else CPU), <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>
    /// <c>auto</c> (fp16 on CUDA, fp32 on the CPU), <c>fp32</c>, <c>fp16</c> or <c>bf16</c>. The network runs in this
    /// precision; the DDIM update stays float32.
    /// </summary>
    public string Precision { get; init; } = "auto";

    /// <summary>LibTorch intra-op threads on the CPU (0 = all cores). Process-wide: LibTorch has one pool.</summary>
    public int Threads { get; init; }

    /// <summary>Frames sampled together (network batch = 2 × this with guidance).</summary>
    public int MaxFrameBatch { get; init; } = 8;

    /// <summary>Noise correlation across a segment (docs/model.md: 0.9).</summary>
    public double SegmentNoiseCorrelation { get; init; } = 0.9;

    /// <summary>The prompt vocabulary (default <see cref="SceneVocabulary.Default"/>).</summary>
    public SceneVocabulary? Vocabulary { get; init; }
}

/// <summary>Creates the <c>diffusion</c> engine with the TorchSharp implementation of the model.</summary>
public static class TorchDiffusion
{
    /// <summary>
    /// The <c>diffusion</c> engine on TorchSharp: the same <see cref="DiffusionEngine"/> (prompt, scene plan, layout,
    /// Philox noise, segment correlation, facts) around a <see cref="TorchDiffusionModel"/>, loaded on first use.
    /// </summary>
    public static DiffusionEngine CreateEngine(TorchEngineOptions? options = null)
    {
        options ??= new TorchEngineOptions();
        return new DiffusionEngine(
            () => TorchDiffusionModel.Load(options.ModelPath ?? ModelLocator.FindRequired(), options),
            new DiffusionEngineOptions { SegmentNoiseCorrelation = options.SegmentNoiseCorrelation, Vocabulary = options.Vocabulary, MaxFrameBatch = options.MaxFrameBatch });
    }
}
