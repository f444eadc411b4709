using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Procedural;

/// <summary>Everything about one frame that does not vary per pixel, and the per-pixel colour function.</summary>
internal sealed class FramePainter
{
    private const double OutlineWidth = 0.045;

    private static readonly Rgbf TyreColour = new(28, 28, 30);
    private static readonly Rgbf HubColour = new(150, 150, 156);
    private static readonly Rgbf GlassColour = new(186, 212, 232);
    private static readonly Rgbf WoodColour = new(96, 64, 40);
    private static readonly Rgbf EyeColour = new(20, 20, 20);
    private static readonly Rgbf BeakColour = new(120, 100, 80);

    private readonly int _width;
    private readonly int _height;
    private readonly Background _background;
    private readonly Shape[] _parts;
    private readonly Rgbf _body;
    private readonly Rgbf _outline;
    private readonly ObjectPlacement _placement;
    private readonly int _left;
    private readonly int _top;
    private readonly int _right;
    private readonly int _bottom;

    public FramePainter(SceneDescription scene, double shotPosition, int width, int height)
    {
        _width = width;
        _height = height;
        var aspect = (double)width / height;
        _background = new Background(scene.Background, scene.Layout, aspect, height);
        _parts = ObjectModels.For(scene.Object).Parts;
        _body = Rgbf.FromBytes(scene.ObjectColour.R, scene.ObjectColour.G, scene.ObjectColour.B);

        // A darker rim separates the object from a background of similar brightness; black needs a lighter one.
        var luma = (0.3 * _body.R) + (0.59 * _body.G) + (0.11 * _body.B);
        _outline = luma < 48 ? new Rgbf(96, 96, 100) : _body.Scale(0.55);

        _placement = ObjectLayout.Place(scene, shotPosition, aspect);
        var (left, top, right, bottom) = ObjectLayout.Bounds(scene.Object, _placement);

        // Pixel bounds of the object, widened by the outline and one pixel of anti-aliasing.
        var pad = (OutlineWidth * _placement.Scale) + (1.5 / height);
        _left = Math.Max(0, (int)Math.Floor(((left - pad) * height) - 0.5));
        _right = Math.Min(width - 1, (int)Math.Ceiling(((right + pad) * height) - 0.5));
        _top = Math.Max(0, (int)Math.Floor(((top - pad) * height) - 0.5));
        _bottom = Math.Min(height - 1, (int)Math.Ceiling(((bottom + pad) * height) - 0.5));
    }

    public void PaintRow(int y, byte[] pixels)
    {
        var v = (y + 0.5) / _height;
        var row = _background.RowAt(v);
        var rowHasObject = y >= _top && y <= _bottom;
        Span<double> distances = stackalloc double[_parts.Length];
        var offset = y * _width * 3;
        if (row.IsUniform && !rowHasObject)
        {
            FillRow(pixels.AsSpan(offset, _width * 3), row.Fill);
            return;
        }

        for (var x = 0; x < _width; x++, offset += 3)
        {
            var u = (x + 0.5) / _height;
            var colour = row.IsUniform ? row.Fill : _background.ColourAt(u, row);
            if (rowHasObject && x >= _left && x <= _right)
            {
                colour = PaintObject(colour, u, v, distances);
            }

            pixels[offset] = Rgbf.ToByte(colour.R);
            pixels[offset + 1] = Rgbf.ToByte(colour.G);
            pixels[offset + 2] = Rgbf.ToByte(colour.B);
        }
    }

    private static void FillRow(Span<byte> row, Rgbf colour)
    {
        ReadOnlySpan<byte> pixel = [Rgbf.ToByte(colour.R), Rgbf.ToByte(colour.G), Rgbf.ToByte(colour.B)];
        for (var i = 0; i < row.Length; i += 3)
        {
            pixel.CopyTo(row[i..]);
        }
    }

    private Rgbf PaintObject(Rgbf colour, double u, double v, Span<double> distances)
    {
        var (centreX, centreY, scale, mirrored) = _placement;
        var lx = (u - centreX) / scale;
        var ly = (v - centreY) / scale;
        if (mirrored)
        {
            lx = -lx;
        }

        var pixelsPerUnit = _height * scale;
        var nearest = double.MaxValue;
        for (var i = 0; i < _parts.Length; i++)
        {
            distances[i] = _parts[i].Distance(lx, ly);
            nearest = Math.Min(nearest, distances[i]);
        }

        // The outline is the union of all parts grown by its width, painted under the parts, so it only shows at the silhouette.
        colour = Rgbf.Lerp(colour, _outline, Coverage(nearest - OutlineWidth, pixelsPerUnit));
        for (var i = 0; i < _parts.Length; i++)
        {
            var coverage = Coverage(distances[i], pixelsPerUnit);
            if (coverage > 0)
            {
                colour = Rgbf.Lerp(colour, FillColour(_parts[i].Fill), coverage);
            }
        }

        return colour;
    }

    private Rgbf FillColour(Fill fill) => fill switch
    {
        Fill.Body => _body,
        Fill.Tyre => TyreColour,
        Fill.Hub => HubColour,
        Fill.Glass => GlassColour,
        Fill.Wood => WoodColour,
        Fill.Eye => EyeColour,
        Fill.Beak => BeakColour,
        _ => throw new ArgumentOutOfRangeException(nameof(fill), fill, null),
    };

    /// <summary>Fraction of a pixel covered by a shape whose edge is <paramref name="distance"/> units from the pixel centre.</summary>
    internal static double Coverage(double distance, double pixelsPerUnit) => Math.Clamp(0.5 - (distance * pixelsPerUnit), 0, 1);
}
