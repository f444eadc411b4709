namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>
/// A loaded pf-scene model with its DDIM sampler (docs/model.md), on some device: what a <see cref="DiffusionEngine"/>
/// renders with. <see cref="DiffusionModel"/> is the native CPU implementation; <c>ProgrammableFilm.Engine.Torch</c>
/// adds a TorchSharp one. The engine turns a task into <see cref="FrameSpec"/>s (noise, conditioning, layout,
/// keyframes) the same way for both, so one seed gives the same shot on either.
/// </summary>
public interface IDiffusionSampler : IDisposable
{
    /// <summary>The architecture read from the weights file.</summary>
    UNetConfig Config { get; }

    /// <summary><c>{name}-v{version}</c>, e.g. <c>pf-scene-v3</c>.</summary>
    string ModelId { get; }

    /// <summary>Lower-case hex SHA-256 of the weights file.</summary>
    string WeightsSha256 { get; }

    /// <summary>Rows of each prompt embedding table (vocabulary size + 1), in slot order.</summary>
    IReadOnlyList<int> VocabRows { get; }

    /// <summary>
    /// Manifest facts saying how frames were computed: <c>implementation</c> (<c>native</c> or <c>torch</c>),
    /// <c>device</c>, <c>precision</c>, and what else the implementation wants recorded.
    /// </summary>
    IReadOnlyDictionary<string, string> ImplementationFacts { get; }

    /// <summary>
    /// Samples every frame (DDIM, eta 0, guidance with conditional and unconditional rows in one batch) and returns the
    /// final x0 of each, 3 × S × S in [-1, 1]. <paramref name="onStep"/> gets the number of frames that completed one
    /// more step; cancellation is checked before every step.
    /// </summary>
    float[][] Sample(IReadOnlyList<FrameSpec> frames, SamplerSettings settings, Action<int>? onStep, CancellationToken cancellationToken);
}
