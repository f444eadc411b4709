using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Procedural;

/// <summary>Where the object of a scene is at one shot position, in frame-height units (x from the left, y down).</summary>
/// <param name="CentreX">Centre, horizontally.</param>
/// <param name="CentreY">Centre, vertically.</param>
/// <param name="Scale">Object units per frame height: the object's height is about this.</param>
/// <param name="Mirrored">Whether the object faces left (it moves right to left).</param>
public readonly record struct ObjectPlacement(double CentreX, double CentreY, double Scale, bool Mirrored);

/// <summary>
/// The shot's blocking: where the motion puts the object at each shot position. The procedural renderer draws the
/// object there, and the diffusion model is given the same place as a box to paint it in, so a prompt's motion means
/// the same path to both engines.
/// </summary>
public static class ObjectLayout
{
    /// <summary>The object's place at <paramref name="shotPosition"/> (0 to 1) in a frame of the given aspect (width / height).</summary>
    public static ObjectPlacement Place(SceneDescription scene, double shotPosition, double aspect)
    {
        var s = shotPosition;
        var layout = scene.Layout;
        var travel = layout.Travel;
        var xFraction = layout.ObjectX;
        var yFraction = layout.ObjectY;
        var growth = 1.0;
        var mirrored = false;
        switch (scene.Motion)
        {
            case "left-to-right":
                xFraction = 0.5 + ((s - 0.5) * 0.84 * travel);
                break;
            case "right-to-left":
                xFraction = 0.5 - ((s - 0.5) * 0.84 * travel);
                mirrored = true;
                break;
            case "rising":
                yFraction = 0.5 - ((s - 0.5) * 0.6 * travel);
                break;
            case "falling":
                yFraction = 0.5 + ((s - 0.5) * 0.6 * travel);
                break;
            case "approaching":
                growth = 0.4 + (1.2 * travel * s);
                break;
            case "static":
                break;
            default:
                throw new NotSupportedException($"The procedural renderer cannot animate the motion '{scene.Motion}'.");
        }

        return new ObjectPlacement(xFraction * aspect, yFraction, layout.ObjectSize * growth, mirrored);
    }

    /// <summary>The object's bounds (left, top, right, bottom) in frame-height units at <paramref name="placement"/>.</summary>
    public static (double Left, double Top, double Right, double Bottom) Bounds(string obj, ObjectPlacement placement)
    {
        var (_, left, top, right, bottom) = ObjectModels.For(obj);
        if (placement.Mirrored)
        {
            (left, right) = (-right, -left);
        }

        var (x, y, scale) = (placement.CentreX, placement.CentreY, placement.Scale);
        return (x + (left * scale), y + (top * scale), x + (right * scale), y + (bottom * scale));
    }

    /// <summary>
    /// One byte per pixel, rows top to bottom: the fraction of the pixel inside the object's bounding box at
    /// <paramref name="shotPosition"/>, times 255. The diffusion model's layout input and the dataset's <c>layout.u8</c>.
    /// </summary>
    public static byte[] RenderBox(SceneDescription scene, double shotPosition, int width, int height)
    {
        var (left, top, right, bottom) = Bounds(scene.Object, Place(scene, shotPosition, (double)width / height));
        Span<double> columns = stackalloc double[width];
        for (var x = 0; x < width; x++)
        {
            columns[x] = Overlap(x, left * height, right * height);
        }

        var box = new byte[width * height];
        for (var y = 0; y < height; y++)
        {
            var row = Overlap(y, top * height, bottom * height);
            for (var x = 0; x < width; x++)
            {
                box[(y * width) + x] = (byte)Math.Round(row * columns[x] * 255);
            }
        }

        return box;
    }

    private static double Overlap(int pixel, double from, double to) => Math.Clamp(Math.Min(pixel + 1, to) - Math.Max(pixel, from), 0, 1);
}
