namespace ProgrammableFilm.Domain.Specs;

/// <summary>
/// A preview (<c>preview: true</c>, <c>pfilm submit --preview</c>) is the same job made cheap enough for every pull
/// request: each shot at half the width and height (a multiple of 8, at least 64), a quarter of the sampler steps
/// (at least 4), and every <see cref="FrameStride"/>th frame, in the preview lane so it is dispatched first.
/// </summary>
/// <remarks>
/// Fewer frames are planned (the frame rate divided by the stride) rather than duplicated at assembly: the MP4 then
/// holds each rendered frame for the stride's time at the lower rate, which looks the same as a duplicated frame,
/// needs no change to the planner, the workers or ffmpeg, and keeps the file and the encode small. Keyframe intervals
/// shrink with the rate so a preview has the same keyframes per second as the full render.
/// </remarks>
public static class PreviewPolicy
{
    public const int FrameStride = 4;
    public const int StepDivisor = 4;
    public const int MinSteps = 4;

    public static JobSpec Apply(JobSpec spec) => spec with
    {
        Lane = Lane.Preview,
        Shots = [.. spec.Shots.Select(Apply)],
        Preview = true,
    };

    public static ShotSpec Apply(ShotSpec shot)
    {
        // A shot of a frame or two keeps its rate: a preview must hold at least one frame.
        var fps = ShotFrames.Count(shot.DurationSeconds, shot.Fps / FrameStride) >= 1 ? shot.Fps / FrameStride : shot.Fps;
        return shot with
        {
            Width = Half(shot.Width),
            Height = Half(shot.Height),
            Steps = Steps(shot.Steps),
            Fps = fps,
            KeyframeInterval = Math.Max(1, shot.KeyframeInterval * fps / shot.Fps),
            Variants = [.. shot.Variants.Select(v => v with
            {
                Steps = v.Steps is { } steps ? Steps(steps) : null,
                KeyframeInterval = v.KeyframeInterval is { } interval ? Math.Max(1, interval * fps / shot.Fps) : null,
            })],
        };
    }

    private static int Steps(int steps) => Math.Min(steps, Math.Max(MinSteps, steps / StepDivisor));

    /// <summary>Half a side, down to a multiple of 8 and never under the spec's minimum of 64 (nor above the side itself).</summary>
    public static int Half(int side) => Math.Min(side, Math.Max(SpecLimits.MinDimension, side / 2 / SpecLimits.DimensionMultiple * SpecLimits.DimensionMultiple));
}
