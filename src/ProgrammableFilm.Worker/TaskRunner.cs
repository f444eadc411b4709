using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Imaging;
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

        var flicker = FlickerMetric.Compute(frames);
        var video = await assembler.AssembleAsync(task.ShotFolder, task.Fps, task.Width, task.Height, cancellationToken);
        progress.Report(new RenderProgress(task.Frames.Length * 2, task.Frames.Length * 2));
        return new TaskOutcome([video], new Dictionary<string, double> { ["flicker"] = flicker }, new Dictionary<string, string>(), []);
    }

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
