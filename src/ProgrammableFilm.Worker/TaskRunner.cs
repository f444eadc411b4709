using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Imaging;
using ProgrammableFilm.Engine.Scene;
using ProgrammableFilm.Storage;
using Contract = ProgrammableFilm.Contracts;

namespace ProgrammableFilm.Worker;

/// <summary>What one attempt produced.</summary>
public sealed record TaskOutcome(
    IReadOnlyList<string> Outputs,
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyDictionary<string, string> Facts,
    IReadOnlyList<string> UnknownWords);

/// <summary>Runs one task: renders frames with the shot's engine, or assembles the shot's frames into its MP4.</summary>
public sealed class TaskRunner(IEnumerable<IRenderEngine> engines, ShotStorage storage, FfmpegAssembler assembler)
{
    private readonly Dictionary<string, IRenderEngine> _engines = engines.ToDictionary(e => e.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<string> Engines => _engines.Keys;

    public Task<TaskOutcome> RunAsync(Contract.RenderTask task, IProgress<RenderProgress> progress, CancellationToken cancellationToken) => task.Kind switch
    {
        "keyframe" or "segment" => RenderAsync(task, progress, cancellationToken),
        "assemble" => AssembleAsync(task, progress, cancellationToken),
        _ => throw new FatalTaskException($"unknown task kind '{task.Kind}'"),
    };

    private async Task<TaskOutcome> RenderAsync(Contract.RenderTask task, IProgress<RenderProgress> progress, CancellationToken cancellationToken)
    {
        if (!_engines.TryGetValue(task.Engine, out var engine))
        {
            throw new FatalTaskException($"this worker does not offer engine '{task.Engine}' (it offers: {string.Join(", ", _engines.Keys)})");
        }

        var request = new RenderRequest
        {
            Prompt = task.Prompt,
            Width = task.Width,
            Height = task.Height,
            Steps = task.Steps,
            Guidance = task.Guidance,
            Seed = task.Seed,
            TotalFrames = task.TotalFrames,
            FrameIndices = task.Frames,
            StartKeyframe = task.StartKeyframe is { } start ? new ConditioningFrame(start, await ReadFrameAsync(task.ShotFolder, start)) : null,
            EndKeyframe = task.EndKeyframe is { } end ? new ConditioningFrame(end, await ReadFrameAsync(task.ShotFolder, end)) : null,
            MaxFrameBatch = task.MaxFrameBatch,
        };
        var result = await engine.RenderAsync(request, progress, cancellationToken);

        var outputs = new List<string>(result.Frames.Count);
        foreach (var frame in result.Frames)
        {
            var path = ShotStorage.FramePath(task.ShotFolder, frame.FrameIndex);
            await storage.WriteAtomicAsync(path, stream => { Png.Write(frame.Image, stream); return Task.CompletedTask; }, cancellationToken);
            outputs.Add(path);
            foreach (var folder in task.CopyTo)
            {
                // Before the success report: a reusing take's tasks are released by it and read the copy at once.
                storage.Copy(path, ShotStorage.FramePath(folder, frame.FrameIndex));
            }
        }

        return new TaskOutcome(outputs, new Dictionary<string, double>(), result.Facts, result.UnknownWords);
    }

    private async Task<TaskOutcome> AssembleAsync(Contract.RenderTask task, IProgress<RenderProgress> progress, CancellationToken cancellationToken)
    {
        var missing = task.Frames.Where(f => !storage.Exists(ShotStorage.FramePath(task.ShotFolder, f))).Take(5).ToList();
        if (missing.Count > 0)
        {
            throw new FatalTaskException($"cannot assemble: frames {string.Join(", ", missing)} are missing from {task.ShotFolder}/frames");
        }

        var frames = new List<RgbImage>(task.Frames.Length);
        foreach (var frame in task.Frames)
        {
            frames.Add(await ReadFrameAsync(task.ShotFolder, frame));
            progress.Report(new RenderProgress(frames.Count, task.Frames.Length * 2));
        }

        var metrics = new Dictionary<string, double>(StringComparer.Ordinal) { ["flicker"] = FlickerMetric.Compute(frames) };
        if (task.Frames.Length == task.TotalFrames)
        {
            // The take's feedback signals: where its tasks join, and whether its frames show what the prompt asks.
            metrics["seam_error"] = SeamMetric.Compute(frames, task.Keyframes);
            var adherence = PromptAdherence.Measure(task.Prompt, task.Seed, task.TotalFrames, [.. task.Keyframes.Where(k => k < frames.Count).Select(k => (k, frames[k]))]);
            metrics["prompt_adherence"] = adherence.Overall;
            metrics["prompt_adherence_object"] = adherence.Object;
            metrics["prompt_adherence_colour"] = adherence.Colour;
            metrics["prompt_adherence_background"] = adherence.Background;
        }

        var video = await assembler.AssembleAsync(task.ShotFolder, task.Fps, task.Width, task.Height, Marking(task), cancellationToken);
        progress.Report(new RenderProgress(task.Frames.Length * 2, task.Frames.Length * 2));
        return new TaskOutcome([video], metrics, new Dictionary<string, string>(), []);
    }

    /// <summary>
    /// The machine-readable marking carried by the MP4 itself, so the disclosure survives the file leaving the farm
    /// without its manifest: IPTC's digital source type (a trained model's output, or a purely algorithmic one) and
    /// the take it came from. Not signed: see docs/provenance.md.
    /// </summary>
    private static Dictionary<string, string> Marking(Contract.RenderTask task) => new(StringComparer.Ordinal)
    {
        ["comment"] = "AI-generated video (ProgrammableFilm). Provenance: manifest.json of take " + task.ShotId.ToString("D"),
        ["ai_generated"] = "true",
        ["digital_source_type"] = task.Engine == "procedural"
            ? "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"
            : "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
        ["programmablefilm_take"] = task.ShotId.ToString("D"),
    };

    private async Task<RgbImage> ReadFrameAsync(string shotFolder, int frame)
    {
        var path = ShotStorage.FramePath(shotFolder, frame);
        if (!storage.Exists(path))
        {
            throw new FatalTaskException($"frame {frame} is missing from {shotFolder}/frames");
        }

        await using var stream = storage.OpenRead(path);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        buffer.Position = 0;
        return Png.Read(buffer);
    }
}

/// <summary>A failure that retrying will not fix (bad parameters, missing inputs).</summary>
public sealed class FatalTaskException(string message) : Exception(message);
