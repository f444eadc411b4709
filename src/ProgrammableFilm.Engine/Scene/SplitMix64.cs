namespace ProgrammableFilm.Engine.Scene;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014): a tiny PRNG whose output is fixed by its published algorithm, unlike
/// <see cref="Random"/>, whose sequence may change between .NET versions. Layouts and datasets depend on it staying put.
/// </summary>
public struct SplitMix64(ulong seed)
{
    private const ulong Gamma = 0x9E3779B97F4A7C15UL;

    private ulong _state = seed;

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        _state += Gamma;
        return Finalise(_state);
    }

    /// <summary>A double uniformly in [0, 1), from the top 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A double uniformly in [<paramref name="min"/>, <paramref name="max"/>).</summary>
    public double NextDouble(double min, double max) => min + (NextDouble() * (max - min));

    /// <summary>A stateless hash of <paramref name="a"/> and <paramref name="b"/>: one SplitMix64 step, for per-item detail (building heights, lit windows).</summary>
    public static ulong Hash(ulong a, ulong b) => Finalise(a + Gamma + Finalise(b + unchecked(Gamma * 2)));

    /// <summary><see cref="Hash(ulong, ulong)"/> mapped to [0, 1).</summary>
    public static double HashToUnit(ulong a, ulong b) => (Hash(a, b) >> 11) * (1.0 / (1UL << 53));

    private static ulong Finalise(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
