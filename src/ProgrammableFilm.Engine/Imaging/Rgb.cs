namespace ProgrammableFilm.Engine.Imaging;

/// <summary>An 8-bit RGB colour.</summary>
public readonly record struct Rgb(byte R, byte G, byte B)
{
    /// <summary>The largest per-channel difference to <paramref name="other"/> (Chebyshev distance, 0..255).</summary>
    public int DistanceTo(Rgb other) =>
        Math.Max(Math.Abs(R - other.R), Math.Max(Math.Abs(G - other.G), Math.Abs(B - other.B)));
}
