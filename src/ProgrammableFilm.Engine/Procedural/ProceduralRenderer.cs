using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Procedural;

/// <summary>
/// Draws a <see cref="SceneDescription"/> as a flat-shaded previz frame: one background and one object moving along
/// its motion. Coordinates are in units of the frame height, so every resolution shows the same picture; edges are
/// anti-aliased analytically from signed distances. Pixels depend only on the scene, the shot position and the size.
/// </summary>
public static class ProceduralRenderer
{
    // Below this many pixels a frame takes well under a millisecond and thread hand-off would cost more than it saves.
    private const int ParallelPixelThreshold = 128 * 128;

    /// <summary>Renders the frame at <paramref name="shotPosition"/> (0 = first frame of the shot, 1 = last).</summary>
    /// <exception cref="NotSupportedException">The scene names a background or object this renderer cannot draw.</exception>
    public static RgbImage RenderFrame(SceneDescription scene, double shotPosition, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(scene);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (!(shotPosition is >= 0 and <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(shotPosition), shotPosition, "The shot position must be in [0, 1].");
        }

        var painter = new FramePainter(scene, shotPosition, width, height);
        var image = new RgbImage(width, height);
        var pixels = image.Pixels;
        if ((long)width * height >= ParallelPixelThreshold)
        {
            Parallel.For(0, height, y => painter.PaintRow(y, pixels));
        }
        else
        {
            for (var y = 0; y < height; y++)
            {
                painter.PaintRow(y, pixels);
            }
        }

        return image;
    }
}
