using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Procedural;

/// <summary>
/// The six backgrounds as functions of a point (u, v) in frame-height units (u across, v down, both from the top left).
/// Their palettes are kept away from the vocabulary's object colours so that the object stays the dominant area of its
/// colour in every combination (the dataset and the tests rely on that).
/// </summary>
internal sealed class Background
{
    private const double BuildingPitch = 0.1;
    private const double TreePitch = 0.14;

    private static readonly Rgbf DesertSkyTop = new(110, 165, 220);
    private static readonly Rgbf DesertSkyLow = new(205, 222, 236);
    private static readonly Rgbf SandFar = new(228, 198, 142);
    private static readonly Rgbf SandNear = new(204, 164, 108);
    private static readonly Rgbf NightSkyTop = new(10, 14, 40);
    private static readonly Rgbf NightSkyLow = new(44, 36, 82);
    private static readonly Rgbf BuildingColour = new(32, 36, 64);
    private static readonly Rgbf WindowLit = new(255, 214, 120);
    private static readonly Rgbf Road = new(40, 40, 50);
    private static readonly Rgbf OceanSkyTop = new(120, 175, 225);
    private static readonly Rgbf OceanSkyLow = new(205, 225, 242);
    private static readonly Rgbf WaterFar = new(64, 132, 182);
    private static readonly Rgbf WaterNear = new(22, 78, 140);
    private static readonly Rgbf WaveCrest = new(150, 196, 228);
    private static readonly Rgbf ForestSkyTop = new(150, 200, 232);
    private static readonly Rgbf ForestSkyLow = new(212, 230, 236);
    private static readonly Rgbf GrassFar = new(92, 136, 64);
    private static readonly Rgbf GrassNear = new(60, 102, 44);
    private static readonly Rgbf Canopy = new(26, 86, 46);
    private static readonly Rgbf Trunk = new(88, 58, 34);
    private static readonly Rgbf SnowSkyTop = new(180, 198, 226);
    private static readonly Rgbf SnowSkyLow = new(212, 222, 238);
    private static readonly Rgbf Mountain = new(158, 174, 202);
    private static readonly Rgbf SnowFar = new(204, 214, 230);
    private static readonly Rgbf SnowNear = new(222, 229, 241);
    private static readonly Rgbf SunsetTop = new(62, 36, 104);
    private static readonly Rgbf SunsetMiddle = new(178, 80, 112);
    private static readonly Rgbf SunsetLow = new(250, 168, 92);
    private static readonly Rgbf Sun = new(255, 228, 160);
    private static readonly Rgbf Silhouette = new(48, 28, 58);

    private readonly Kind _kind;
    private readonly double _horizon;
    private readonly double _aspect;
    private readonly double _pixelsPerUnit;
    private readonly ulong _detail;
    private readonly double _phase;

    public Background(string name, SceneLayout layout, double aspect, int height)
    {
        _kind = name switch
        {
            "desert" => Kind.Desert,
            "night-city" => Kind.NightCity,
            "ocean" => Kind.Ocean,
            "forest" => Kind.Forest,
            "snow" => Kind.Snow,
            "sunset-sky" => Kind.SunsetSky,
            _ => throw new NotSupportedException($"The procedural renderer cannot draw the background '{name}'."),
        };
        _horizon = layout.Horizon;
        _aspect = aspect;
        _pixelsPerUnit = height;
        _detail = layout.DetailSeed;
        _phase = SplitMix64.HashToUnit(_detail, 0);
    }

    /// <summary>The per-row part of the background.</summary>
    /// <param name="V">The row's vertical coordinate.</param>
    /// <param name="Sky">The sky gradient at this row.</param>
    /// <param name="Ground">The ground gradient at this row.</param>
    /// <param name="IsUniform">Whether every pixel of the row has the colour <paramref name="Fill"/>.</param>
    /// <param name="Fill">The row's colour when it is uniform.</param>
    public readonly record struct Row(double V, Rgbf Sky, Rgbf Ground, bool IsUniform, Rgbf Fill);

    private enum Kind
    {
        Desert,
        NightCity,
        Ocean,
        Forest,
        Snow,
        SunsetSky,
    }

    /// <summary>
    /// What depends only on the row: the sky and ground gradients, and whether the whole row is one colour (most rows
    /// are pure sky or pure ground), which lets the painter skip the per-pixel background work.
    /// </summary>
    public Row RowAt(double v)
    {
        var m = 1 / _pixelsPerUnit;
        switch (_kind)
        {
            case Kind.Desert:
                var sand = Ground(v, SandFar, SandNear);
                return Classify(v, Sky(v, DesertSkyTop, DesertSkyLow), sand, _horizon - 0.035 - m, _horizon + 0.09 + m, sand.Scale(0.94));
            case Kind.NightCity:
                return Classify(v, Sky(v, NightSkyTop, NightSkyLow), Road, _horizon - 0.35 - m, 0.88 + m, Road);
            case Kind.Ocean:
                return Classify(v, Sky(v, OceanSkyTop, OceanSkyLow), Ground(v, WaterFar, WaterNear), _horizon - m, double.MaxValue, default);
            case Kind.Forest:
                var grass = Ground(v, GrassFar, GrassNear);
                return Classify(v, Sky(v, ForestSkyTop, ForestSkyLow), grass, _horizon + 0.02 - 0.36 - m, _horizon + 0.025 + m, grass);
            case Kind.Snow:
                var snow = Ground(v, SnowFar, SnowNear);
                return Classify(v, Sky(v, SnowSkyTop, SnowSkyLow), snow, _horizon - 0.16 - m, _horizon + m, snow);
            default:
                var land = _horizon + 0.2;
                return Classify(v, SunsetGradient(v), Silhouette, land - 0.13 - m, land + m, Silhouette);
        }
    }

    private static Row Classify(double v, Rgbf sky, Rgbf ground, double skyEnds, double groundStarts, Rgbf groundFill) =>
        v < skyEnds ? new Row(v, sky, ground, true, sky)
        : v > groundStarts ? new Row(v, sky, ground, true, groundFill)
        : new Row(v, sky, ground, false, default);

    public Rgbf ColourAt(double u, in Row row) => _kind switch
    {
        Kind.Desert => Desert(u, row),
        Kind.NightCity => NightCity(u, row),
        Kind.Ocean => Ocean(u, row),
        Kind.Forest => Forest(u, row),
        Kind.Snow => Snow(u, row),
        _ => SunsetSky(u, row),
    };

    private Rgbf Desert(double u, in Row row)
    {
        var v = row.V;
        var colour = row.Sky;
        var ground = row.Ground;
        var farDunes = _horizon - (0.035 * Arch(Fraction((u / 0.7) + _phase)));
        colour = Rgbf.Lerp(colour, ground, Below(v, farDunes));
        var nearDunes = _horizon + 0.09 - (0.045 * Arch(Fraction((u / 0.5) + (_phase * 3))));
        return Rgbf.Lerp(colour, ground.Scale(0.94), Below(v, nearDunes));
    }

    private Rgbf NightCity(double u, in Row row)
    {
        var v = row.V;
        var colour = row.Sky;
        var cell = (long)Math.Floor(u / BuildingPitch);
        var margin = 1 / _pixelsPerUnit;
        for (var i = cell - 1; i <= cell + 1; i++)
        {
            var centre = (i + 0.5) * BuildingPitch;
            if (Math.Abs(u - centre) > (BuildingPitch / 2) + margin)
            {
                continue;
            }

            var top = _horizon - 0.05 - (0.3 * Unit(i, 1));
            if (v < top - margin)
            {
                continue;
            }

            var coverage = Cover(Sdf.Box(u, v, centre, (top + 1.2) / 2, (BuildingPitch / 2) - 0.006, (1.2 - top) / 2));
            if (coverage <= 0)
            {
                continue;
            }

            var facade = BuildingColour.Scale(0.85 + (0.3 * Unit(i, 2)));
            colour = Rgbf.Lerp(colour, facade, coverage);
            if (i == cell)
            {
                colour = Rgbf.Lerp(colour, WindowLit, coverage * LitWindow(u - (i * BuildingPitch), v - top, i));
            }
        }

        return Rgbf.Lerp(colour, row.Ground, Below(v, 0.88));
    }

    /// <summary>Coverage of a lit window at a point given relative to its building's top-left corner.</summary>
    private double LitWindow(double x, double y, long building)
    {
        const double columnPitch = 0.024;
        const double rowPitch = 0.036;
        if (y < 0.015 || x < 0.01 || x > BuildingPitch - 0.016)
        {
            return 0;
        }

        var column = Math.Floor((x - 0.01) / columnPitch);
        var row = Math.Floor((y - 0.015) / rowPitch);
        var cx = 0.01 + ((column + 0.5) * columnPitch);
        var cy = 0.015 + ((row + 0.5) * rowPitch);
        var margin = 1 / _pixelsPerUnit;
        if (Math.Abs(x - cx) > 0.006 + margin || Math.Abs(y - cy) > 0.009 + margin)
        {
            return 0;
        }

        if (SplitMix64.HashToUnit(_detail ^ (ulong)building, (ulong)((row * 16) + column + 3)) >= 0.45)
        {
            return 0;
        }

        return Cover(Sdf.Box(x, y, cx, cy, 0.006, 0.009));
    }

    private Rgbf Ocean(double u, in Row row)
    {
        var v = row.V;
        var colour = Rgbf.Lerp(row.Sky, row.Ground, Below(v, _horizon));
        const double rowPitch = 0.045;
        var depth = v - _horizon;
        if (depth <= 0)
        {
            return colour;
        }

        // Short crests on rows below the horizon, longer and thicker nearer the camera.
        var waveRow = Math.Floor(depth / rowPitch);
        var rowCentre = _horizon + ((waveRow + 0.5) * rowPitch);
        var near = (rowCentre - _horizon) / (1 - _horizon);
        const double pitch = 0.22;
        var shift = Unit((long)waveRow, 3) * pitch;
        var along = Fraction((u + shift) / pitch) * pitch;
        if (Math.Abs(v - rowCentre) > 0.006 + (1 / _pixelsPerUnit))
        {
            return colour;
        }

        var crest = Sdf.Box(along, v, pitch / 2, rowCentre, 0.02 + (0.05 * near), 0.002 + (0.004 * near));
        return Rgbf.Lerp(colour, WaveCrest, 0.7 * Cover(crest));
    }

    private Rgbf Forest(double u, in Row row)
    {
        var v = row.V;
        var colour = Rgbf.Lerp(row.Sky, row.Ground, Below(v, _horizon));
        var baseline = _horizon + 0.02;
        var margin = 1 / _pixelsPerUnit;
        if (v < baseline - 0.36 - margin || v > baseline + 0.005 + margin)
        {
            return colour;
        }

        var cell = (long)Math.Floor(u / TreePitch);
        for (var i = cell - 1; i <= cell + 1; i++)
        {
            var x = ((i + 0.5) * TreePitch) + ((Unit(i, 4) - 0.5) * 0.05);
            if (Math.Abs(u - x) > 0.065 + margin)
            {
                continue;
            }

            var treeHeight = 0.2 + (0.16 * Unit(i, 5));
            if (v < baseline - treeHeight - margin)
            {
                continue;
            }

            colour = Rgbf.Lerp(colour, Trunk, Cover(Sdf.Box(u, v, x, baseline - 0.03, 0.01, 0.035)));
            var crown = Sdf.Polygon(u, v, [x - 0.065, baseline - 0.05, x + 0.065, baseline - 0.05, x, baseline - treeHeight]);
            colour = Rgbf.Lerp(colour, Canopy.Scale(0.85 + (0.3 * Unit(i, 6))), Cover(crown));
        }

        return colour;
    }

    private Rgbf Snow(double u, in Row row)
    {
        var v = row.V;
        var ridge = _horizon - 0.04 - (0.12 * Tent(Fraction((u / 0.45) + _phase)));
        var colour = Rgbf.Lerp(row.Sky, Mountain, Below(v, ridge));
        return Rgbf.Lerp(colour, row.Ground, Below(v, _horizon));
    }

    private Rgbf SunsetSky(double u, in Row row)
    {
        var v = row.V;
        var land = _horizon + 0.2;
        var colour = Rgbf.Lerp(row.Sky, Sun, Cover(Sdf.Circle(u, v, (0.55 + (0.3 * _phase)) * _aspect, land - 0.05, 0.08)));
        var hills = land - (0.025 * Arch(Fraction((u / 0.6) + _phase)));
        return Rgbf.Lerp(colour, row.Ground, Below(v, hills));
    }

    // The sunset has no separate ground gradient: the sky runs purple to orange down to a dark silhouette of land.
    private Rgbf SunsetGradient(double v)
    {
        var t = Math.Clamp(v / (_horizon + 0.2), 0, 1);
        return t < 0.5
            ? Rgbf.Lerp(SunsetTop, SunsetMiddle, t * 2)
            : Rgbf.Lerp(SunsetMiddle, SunsetLow, (t - 0.5) * 2);
    }

    private Rgbf Sky(double v, Rgbf top, Rgbf low) => Rgbf.Lerp(top, low, Math.Clamp(v / _horizon, 0, 1));

    private Rgbf Ground(double v, Rgbf far, Rgbf near) => Rgbf.Lerp(far, near, Math.Clamp((v - _horizon) / (1 - _horizon), 0, 1));

    private double Cover(double distance) => FramePainter.Coverage(distance, _pixelsPerUnit);

    /// <summary>Coverage of the region below a line at height <paramref name="line"/> (vertical distance: the lines are gentle).</summary>
    private double Below(double v, double line) => Cover(line - v);

    private double Unit(long item, ulong salt) => SplitMix64.HashToUnit(_detail + salt, unchecked((ulong)item));

    private static double Fraction(double x) => x - Math.Floor(x);

    private static double Arch(double t) => 4 * t * (1 - t);

    private static double Tent(double t) => 1 - Math.Abs((2 * t) - 1);
}
