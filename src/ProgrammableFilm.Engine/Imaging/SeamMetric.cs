namespace ProgrammableFilm.Engine.Imaging;

/// <summary>
/// How visible the joins between keyframe and segment tasks are: <see cref="FlickerMetric"/>'s second temporal
/// difference, <c>|f[k] - (f[k-1] + f[k+1]) / 2|</c>, taken only at the interior keyframes <c>k</c>, where a frame of one
/// task meets frames of another. In 0..255 units like flicker, so the two compare directly: a seam error well above
/// the shot's flicker is a visible pop at every keyframe.
/// </summary>
public static class SeamMetric
{
    /// <summary>The seam error of <paramref name="frames"/> (frame <c>i</c> at index <c>i</c>); 0 without an interior keyframe.</summary>
    public static double Compute(IReadOnlyList<RgbImage> frames, IReadOnlyList<int> keyframes)
    {
        ArgumentNullException.ThrowIfNull(frames);
        ArgumentNullException.ThrowIfNull(keyframes);
        var interior = keyframes.Where(k => k > 0 && k < frames.Count - 1).Distinct().ToList();
        if (interior.Count == 0)
        {
            return 0;
        }

        long sum = 0;
        var length = frames[0].Pixels.Length;
        foreach (var k in interior)
        {
            var (a, b, c) = (frames[k - 1].Pixels, frames[k].Pixels, frames[k + 1].Pixels);
            if (a.Length != length || b.Length != length || c.Length != length)
            {
                throw new ArgumentException("All frames must have the same size.", nameof(frames));
            }

            for (var p = 0; p < length; p++)
            {
                sum += Math.Abs((2 * b[p]) - a[p] - c[p]);
            }
        }

        return sum / 2.0 / ((double)length * interior.Count);
    }
}
