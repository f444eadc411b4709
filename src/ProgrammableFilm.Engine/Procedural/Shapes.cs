namespace ProgrammableFilm.Engine.Procedural;

/// <summary>
/// Signed distance functions (after Inigo Quilez): negative inside, in the caller's units. Anti-aliasing converts the
/// distance at a pixel centre into coverage, which is exact for straight edges and needs one evaluation per pixel
/// instead of several sub-samples. Only +, -, *, / and sqrt are used: IEEE-754 makes them bit-identical on every machine.
/// </summary>
internal static class Sdf
{
    public static double Circle(double x, double y, double cx, double cy, double r)
    {
        var dx = x - cx;
        var dy = y - cy;
        return Math.Sqrt((dx * dx) + (dy * dy)) - r;
    }

    public static double Box(double x, double y, double cx, double cy, double hx, double hy, double radius = 0)
    {
        var dx = Math.Abs(x - cx) - hx + radius;
        var dy = Math.Abs(y - cy) - hy + radius;
        var ox = Math.Max(dx, 0);
        var oy = Math.Max(dy, 0);
        return Math.Sqrt((ox * ox) + (oy * oy)) + Math.Min(Math.Max(dx, dy), 0) - radius;
    }

    /// <summary>An ellipse's distance, approximated to first order (accurate near the edge, which is all coverage needs).</summary>
    public static double Ellipse(double x, double y, double cx, double cy, double rx, double ry)
    {
        var px = (x - cx) / rx;
        var py = (y - cy) / ry;
        var k0 = Math.Sqrt((px * px) + (py * py));
        if (k0 < 1e-9)
        {
            return -Math.Min(rx, ry);
        }

        var qx = px / rx;
        var qy = py / ry;
        return k0 * (k0 - 1) / Math.Sqrt((qx * qx) + (qy * qy));
    }

    /// <summary>Exact distance to a simple polygon given as x0, y0, x1, y1, ...</summary>
    public static double Polygon(double x, double y, double[] points)
    {
        var n = points.Length / 2;
        var d = Sq(x - points[0], y - points[1]);
        var sign = 1.0;
        for (int i = 0, j = n - 1; i < n; j = i, i++)
        {
            double vix = points[2 * i], viy = points[(2 * i) + 1], vjx = points[2 * j], vjy = points[(2 * j) + 1];
            double ex = vjx - vix, ey = vjy - viy, wx = x - vix, wy = y - viy;
            var t = Math.Clamp(((wx * ex) + (wy * ey)) / ((ex * ex) + (ey * ey)), 0, 1);
            d = Math.Min(d, Sq(wx - (ex * t), wy - (ey * t)));
            var c1 = y >= viy;
            var c2 = y < vjy;
            var c3 = ex * wy > ey * wx;
            if ((c1 && c2 && c3) || (!c1 && !c2 && !c3))
            {
                sign = -sign;
            }
        }

        return sign * Math.Sqrt(d);
    }

    private static double Sq(double x, double y) => (x * x) + (y * y);
}

/// <summary>One part of an object, in object units (the object is about one unit tall, centred on the origin, facing +x).</summary>
internal abstract record Shape(Fill Fill)
{
    public abstract double Distance(double x, double y);
}

internal sealed record CircleShape(Fill Fill, double Cx, double Cy, double R) : Shape(Fill)
{
    public override double Distance(double x, double y) => Sdf.Circle(x, y, Cx, Cy, R);
}

internal sealed record BoxShape(Fill Fill, double Cx, double Cy, double Hx, double Hy, double Radius) : Shape(Fill)
{
    public override double Distance(double x, double y) => Sdf.Box(x, y, Cx, Cy, Hx, Hy, Radius);
}

internal sealed record EllipseShape(Fill Fill, double Cx, double Cy, double Rx, double Ry) : Shape(Fill)
{
    public override double Distance(double x, double y) => Sdf.Ellipse(x, y, Cx, Cy, Rx, Ry);
}

internal sealed record PolygonShape(Fill Fill, double[] Points) : Shape(Fill)
{
    public override double Distance(double x, double y) => Sdf.Polygon(x, y, Points);
}

/// <summary>Which colour a part takes: the prompted colour for the body, fixed colours for details.</summary>
internal enum Fill
{
    Body,
    Tyre,
    Hub,
    Glass,
    Wood,
    Eye,
    Beak,
}
