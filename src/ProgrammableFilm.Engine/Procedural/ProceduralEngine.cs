using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Procedural;

/// <summary>
/// The <c>procedural</c> engine: renders every requested frame exactly with <see cref="ProceduralRenderer"/> at the
/// request's size. Segment tasks need no conditioning, because each frame is a pure function of the shot position.
/// </summary>
public sealed class ProceduralEngine(SceneVocabulary vocabulary) : IRenderEngine
{
    /// <summary>An engine on <see cref="SceneVocabulary.Default"/>.</summary>
    public ProceduralEngine()
        : this(SceneVocabulary.Default)
    {
    }

    /// <inheritdoc/>
    public string Name => "procedural";

    /// <inheritdoc/>
    public Task<RenderResult> RenderAsync(RenderRequest request, IProgress<RenderProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfLessThan(request.TotalFrames, 1);
        foreach (var index in request.FrameIndices)
        {
            if (index < 0 || index >= request.TotalFrames)
            {
                throw new ArgumentOutOfRangeException(nameof(request), index, $"Frame {index} is outside the shot's {request.TotalFrames} frames.");
            }
        }

        var scene = SceneDescription.FromPrompt(request.Prompt, request.Seed, vocabulary);

        // Rendering is CPU-bound; run it off the caller's thread so a worker's message loop stays responsive.
        return Task.Run(() => Render(request, scene, progress, cancellationToken), cancellationToken);
    }

    private static RenderResult Render(RenderRequest request, SceneDescription scene, IProgress<RenderProgress>? progress, CancellationToken cancellationToken)
    {
        var frames = new List<RenderedFrame>(request.FrameIndices.Count);
        foreach (var index in request.FrameIndices)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var position = request.TotalFrames == 1 ? 0 : (double)index / (request.TotalFrames - 1);
            frames.Add(new RenderedFrame(index, ProceduralRenderer.RenderFrame(scene, position, request.Width, request.Height)));
            progress?.Report(new RenderProgress(frames.Count, request.FrameIndices.Count));
        }

        var facts = new Dictionary<string, string>(scene.ToFacts(), StringComparer.Ordinal)
        {
            ["engine"] = "procedural",
        };
        if (scene.Prompt.IgnoredPhrases.Count > 0)
        {
            facts["prompt.ignored"] = string.Join(", ", scene.Prompt.IgnoredPhrases);
        }

        return new RenderResult { Frames = frames, UnknownWords = scene.Prompt.UnknownWords, Facts = facts };
    }
}
