namespace ProgrammableFilm.Engine.Imaging;

/// <summary>
/// Temporal flicker of a frame sequence: the mean over pixels, channels and frame triples of
/// <c>|f[i+1] - (f[i] + f[i+2]) / 2|</c>, in 0..255 units.
/// </summary>
/// <remarks>
/// This is the second temporal difference. Motion that is locally linear in time (an object sliding at constant
/// speed, a slow fade) makes each pixel's value change at a steady rate, so the middle frame equals the average of its
/// neighbours and the term is near zero; plain frame-to-frame difference would instead score fast motion as "flicker".
/// What remains is change that reverses direction from one frame to the next: shimmering texture, popping detail,
/// brightness pumping, which is what viewers see as flicker. A hard edge moving faster than about a pixel per frame
/// is a step in time at each pixel it crosses, so sharp fast motion still scores a few units (against tens for real
/// flicker): compare scores of similar shots, not across very different ones.
/// </remarks>
public static class FlickerMetric
{
    /// <summary>The flicker score of <paramref name="frames"/>; 0 for fewer than three frames.</summary>
    /// <exception cref="ArgumentException">The frames differ in size.</exception>
    public static double Compute(IReadOnlyList<RgbImage> frames)
    {
        ArgumentNullException.ThrowIfNull(frames);
        if (frames.Count < 3)
        {
            return 0;
        }

        var length = frames[0].Pixels.Length;
        foreach (var frame in frames)
        {
            if (frame.Width != frames[0].Width || frame.Height != frames[0].Height)
            {
                throw new ArgumentException("All frames must have the same size.", nameof(frames));
            }
        }

        // Twice the term, summed in integers: exact, and independent of summation order.
        long sum = 0;
        for (var i = 0; i + 2 < frames.Count; i++)
        {
            var a = frames[i].Pixels;
            var b = frames[i + 1].Pixels;
            var c = frames[i + 2].Pixels;
            for (var p = 0; p < length; p++)
            {
                sum += Math.Abs((2 * b[p]) - a[p] - c[p]);
            }
        }

        return sum / 2.0 / ((double)length * (frames.Count - 2));
    }
}
