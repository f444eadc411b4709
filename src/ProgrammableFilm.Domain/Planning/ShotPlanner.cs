using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Domain.Planning;

/// <summary>The kinds of task in a shot's graph.</summary>
public enum TaskKind
{
    Keyframe,
    Segment,
    Assemble,

    /// <summary>Multiplies an assembled shot's frame rate (<see cref="ShotSpec.Interpolate"/>): billed as its own work.</summary>
    Interpolate,
}

/// <summary>
/// One planned task. <see cref="Key"/> names it within its shot (<c>kf-00012</c>, <c>seg-00012-00024</c>,
/// <c>assemble</c>); <see cref="DependsOn"/> lists the keys it waits for.
/// </summary>
public sealed record PlannedTask(string Key, TaskKind Kind, IReadOnlyList<int> Frames, int? StartKeyframe, int? EndKeyframe, IReadOnlyList<string> DependsOn);

/// <summary>
/// Turns a shot into its task graph: a keyframe task per keyframe (every <c>KeyframeInterval</c> frames, and always
/// the last frame, so that every segment is bounded by two keyframes), a segment task for the frames strictly
/// between two consecutive keyframes (depending on both), one assemble task depending on everything else and, for a
/// shot that interpolates, one interpolate task after the assembly.
/// </summary>
public static class ShotPlanner
{
    public static IReadOnlyList<PlannedTask> Plan(int frameCount, int keyframeInterval, int interpolate = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(frameCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(keyframeInterval, 1);

        var keyframes = Keyframes(frameCount, keyframeInterval);
        var tasks = keyframes.Select(k => new PlannedTask(KeyframeKey(k), TaskKind.Keyframe, [k], null, null, [])).ToList();
        for (var i = 0; i + 1 < keyframes.Count; i++)
        {
            var (start, end) = (keyframes[i], keyframes[i + 1]);
            if (end - start < 2)
            {
                continue;
            }

            var frames = Enumerable.Range(start + 1, end - start - 1).ToList();
            tasks.Add(new PlannedTask($"seg-{start:D5}-{end:D5}", TaskKind.Segment, frames, start, end, [KeyframeKey(start), KeyframeKey(end)]));
        }

        var all = Enumerable.Range(0, frameCount).ToList();
        tasks.Add(new PlannedTask("assemble", TaskKind.Assemble, all, null, null, tasks.Select(t => t.Key).ToList()));
        if (interpolate > 1)
        {
            tasks.Add(new PlannedTask("interpolate", TaskKind.Interpolate, all, null, null, ["assemble"]));
        }

        return tasks;
    }

    public static IReadOnlyList<PlannedTask> Plan(ShotSpec shot) => Plan(shot.FrameCount, shot.KeyframeInterval, shot.Interpolate);

    /// <summary>The number of tasks <see cref="Plan(int, int, int)"/> makes, without making them.</summary>
    public static int TaskCount(ShotSpec shot) => TaskCount(shot.FrameCount, shot.KeyframeInterval) + (shot.Interpolate > 1 ? 1 : 0);

    /// <summary>The number of tasks <see cref="Plan(int, int, int)"/> makes for a shot that does not interpolate.</summary>
    public static int TaskCount(int frameCount, int keyframeInterval)
    {
        var keyframes = Keyframes(frameCount, keyframeInterval);
        var segments = 0;
        for (var i = 0; i + 1 < keyframes.Count; i++)
        {
            if (keyframes[i + 1] - keyframes[i] >= 2)
            {
                segments++;
            }
        }

        return keyframes.Count + segments + 1;
    }

    /// <summary>The position of keyframe <paramref name="frame"/> among the shot's keyframes (the last frame closes the list).</summary>
    public static int KeyframeIndex(int frame, int keyframeInterval) =>
        frame / keyframeInterval + (frame % keyframeInterval == 0 ? 0 : 1);

    public static IReadOnlyList<int> Keyframes(int frameCount, int keyframeInterval)
    {
        var keyframes = new List<int>();
        for (var frame = 0; frame < frameCount; frame += keyframeInterval)
        {
            keyframes.Add(frame);
        }

        if (keyframes[^1] != frameCount - 1)
        {
            keyframes.Add(frameCount - 1);
        }

        return keyframes;
    }

    /// <summary>The key of the keyframe task at <paramref name="frame"/>: keys of frames below 100,000 sort as their frames.</summary>
    public static string KeyframeKey(int frame) => $"kf-{frame:D5}";
}
