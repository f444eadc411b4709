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

/// <summary>
/// Runs one task: renders frames with the shot's engine, assembles the shot's frames into its MP4, or multiplies an
/// assembled shot's frame rate.
/// </summary>
public sealed class TaskRunner(IEnumerable<IRenderEngine> engines, ShotStorage storage, FfmpegAssembler assembler)
{
    private readonly Dictionary<string, IRenderEngine> _engines = engines.ToDictionary(e => e.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<string> Engines => _engines.Keys;

    public Task<TaskOutcome> RunAsync(Contract.RenderTask task, IProgress<RenderProgress> progress, CancellationToken cancellationToken) => task.Kind switch
    {
        "keyframe" or "segment" => RenderAsync(task, progress, cancellationToken),
        "assemble" => AssembleAsync(task, progress, cancellationToken),
        "interpolate" => InterpolateAsync(task, progress, cancellationToken),
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
            InitImage = task.Kind == "keyframe" && task.PlateFolder is { } plate ? await ReadImageAsync(PlateFrame(plate, task.Frames[0])) : null,
            InitStrength = task.PlateStrength ?? 1,
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
            if (task.AnchorBackground is not null || task.AnchorColour is not null)
            {
                // The sequence's consistency check: how far this shot's palette and object colour are from its anchors.
                var drift = AnchorConsistency.Measure(task.AnchorBackground, task.AnchorColour, task.Prompt, task.Seed, task.TotalFrames, [.. task.Keyframes.Where(k => k < frames.Count).Select(k => (k, frames[k]))]);
                if (drift.Palette is { } palette)
                {
                    metrics["anchor_palette_drift"] = palette;
                }

                if (drift.ObjectColour is { } colour)
                {
                    metrics["anchor_colour_drift"] = colour;
                }
            }
        }

        // A shot that interpolates keeps its base-rate video beside the one the interpolate task writes.
        var video = await assembler.AssembleAsync(task.ShotFolder, frames, task.Fps, task.Width, task.Height, Marking(task), cancellationToken,
            task.Interpolate > 1 ? ShotStorage.BaseVideoPath(task.ShotFolder) : null);
        progress.Report(new RenderProgress(task.Frames.Length * 2, task.Frames.Length * 2));
        return new TaskOutcome([video], metrics, new Dictionary<string, string>(), []);
    }

    /// <summary>
    /// Makes the frames between the rendered ones with ffmpeg's motion-compensated interpolation and encodes the
    /// take's MP4 at the multiplied rate. Measures the result's flicker against what holding each frame
    /// (duplication, the cheap way to reach the rate) would give, so every take shows what interpolation bought.
    /// </summary>
    private async Task<TaskOutcome> InterpolateAsync(Contract.RenderTask task, IProgress<RenderProgress> progress, CancellationToken cancellationToken)
    {
        if (task.Interpolate < 2)
        {
            throw new FatalTaskException($"an interpolate task needs a factor of at least 2, got {task.Interpolate}");
        }

        var rendered = new List<RgbImage>(task.Frames.Length);
        foreach (var frame in task.Frames)
        {
            rendered.Add(await ReadFrameAsync(task.ShotFolder, frame));
        }

        var total = task.Frames.Length * task.Interpolate * 2;
        progress.Report(new RenderProgress(task.Frames.Length, total));
        var outputs = await assembler.InterpolateAsync(task.ShotFolder, task.Fps, task.Interpolate, task.Frames.Length, cancellationToken);
        var interpolated = new List<RgbImage>(outputs.Count);
        foreach (var path in outputs)
        {
            interpolated.Add(await ReadImageAsync(path));
        }

        progress.Report(new RenderProgress(total / 2, total));
        var fps = task.Fps * task.Interpolate;
        var video = await assembler.AssembleAsync(task.ShotFolder, interpolated, fps, task.Width, task.Height, Marking(task), cancellationToken, framesFolder: "interpolated");
        progress.Report(new RenderProgress(total, total));
        var duplicated = rendered.SelectMany(frame => Enumerable.Repeat(frame, task.Interpolate)).ToList();
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["interpolated_flicker"] = FlickerMetric.Compute(interpolated),
            ["duplicated_flicker"] = FlickerMetric.Compute(duplicated),
        };
        var facts = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["interpolation_filter"] = FfmpegAssembler.InterpolationFilter,
            ["interpolated_fps"] = fps.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["interpolated_frames"] = outputs.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        return new TaskOutcome([video], metrics, facts, []);
    }

    /// <summary>
    /// The machine-readable marking carried by the MP4 itself, so the disclosure survives the file leaving the farm
    /// without its manifest: IPTC's digital source type (a trained model's output, or a purely algorithmic one) and
    /// the take it came from. Not signed: see docs/provenance.md.
    /// </summary>
    private static Dictionary<string, string> Marking(Contract.RenderTask task) => new(StringComparer.Ordinal)
    {
        ["comment"] = (task.PlateFolder is null ? "AI-generated video" : "Partly AI-generated video, generated from real camera footage")
            + " (ProgrammableFilm). Provenance: manifest.json of take " + task.ShotId.ToString("D"),
        ["ai_generated"] = "true",
        ["digital_source_type"] = task.PlateFolder is not null
            ? "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
            : task.Engine == "procedural"
                ? "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"
                : "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
        ["programmablefilm_take"] = task.ShotId.ToString("D"),
    };

    /// <summary>The plate's frame for a shot frame: the same index, or the plate's last frame (a still plate holds).</summary>
    private string PlateFrame(string plateFolder, int frame)
    {
        var path = $"{plateFolder}/{frame:D5}.png";
        if (storage.Exists(path))
        {
            return path;
        }

        var last = Directory.GetFiles(storage.FullPath(plateFolder), "*.png").Order(StringComparer.Ordinal).LastOrDefault()
            ?? throw new FatalTaskException($"the shot's plate {plateFolder} has no frames");
        return $"{plateFolder}/{Path.GetFileName(last)}";
    }

    private Task<RgbImage> ReadFrameAsync(string shotFolder, int frame)
    {
        var path = ShotStorage.FramePath(shotFolder, frame);
        return storage.Exists(path) ? ReadImageAsync(path) : throw new FatalTaskException($"frame {frame} is missing from {shotFolder}/frames");
    }

    private async Task<RgbImage> ReadImageAsync(string path)
    {
        await using var stream = storage.OpenRead(path);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        buffer.Position = 0;
        return Png.Read(buffer);
    }
}

/// <summary>A failure that retrying will not fix (bad parameters, missing inputs).</summary>
public sealed class FatalTaskException(string message) : Exception(message);
