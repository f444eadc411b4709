namespace ProgrammableFilm.Engine.Procedural;

/// <summary>A colour in 0..255 floating point, so that blends round once, when the pixel is stored.</summary>
internal readonly record struct Rgbf(double R, double G, double B)
{
    public static Rgbf Lerp(Rgbf a, Rgbf b, double t) =>
        new(a.R + ((b.R - a.R) * t), a.G + ((b.G - a.G) * t), a.B + ((b.B - a.B) * t));

    public Rgbf Scale(double k) => new(R * k, G * k, B * k);

    public static Rgbf FromBytes(byte r, byte g, byte b) => new(r, g, b);

    public static byte ToByte(double v) => (byte)(int)(Math.Clamp(v, 0, 255) + 0.5);
}
