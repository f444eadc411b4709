namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>
/// Deterministic standard-normal noise from (seed, frame), byte-identical on every machine, runtime and thread count.
/// <para>
/// Uniforms come from Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), a counter-based
/// generator: key = the 64-bit seed, counter = (pair index, frame low, frame high, stream tag). Each counter gives four
/// 32-bit words, i.e. two 53-bit uniforms u1 ∈ (0, 1], u2 ∈ [0, 1), turned into two normals by Box–Muller,
/// <c>r = sqrt(-2 ln u1)</c>, <c>(r cos 2πu2, r sin 2πu2)</c>.
/// </para>
/// <para>
/// The transform uses no platform maths library: <see cref="Ln"/> and <see cref="SinCosTurns"/> are written here with
/// IEEE-754 double additions, multiplications and divisions in a fixed order (plus <see cref="Math.Sqrt(double)"/>,
/// which IEEE requires to be correctly rounded), and .NET does not contract them into FMAs, so every platform computes
/// the same bits. Accuracy is about 1e-15 relative before the final rounding to float32.
/// </para>
/// </summary>
public static class GaussianNoise
{
    private const uint StreamTag = 0x70660001; // "pf" + stream 1: initial noise

    /// <summary>Fills <paramref name="destination"/> with the noise of (seed, frame); element i is always the same number.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static void Fill(long seed, long frame, Span<float> destination)
    {
        uint k0 = (uint)seed, k1 = (uint)((ulong)seed >> 32);
        uint f0 = (uint)frame, f1 = (uint)((ulong)frame >> 32);
        for (int pair = 0; 2 * pair < destination.Length; pair++)
        {
            Philox(k0, k1, (uint)pair, f0, f1, StreamTag, out uint x0, out uint x1, out uint x2, out uint x3);
            ulong a = ((ulong)x0 << 21) | (x1 >> 11);
            ulong b = ((ulong)x2 << 21) | (x3 >> 11);
            double u1 = (a + 1) * (1.0 / 9007199254740992.0); // (0, 1]
            double u2 = b * (1.0 / 9007199254740992.0); // [0, 1)
            double r = Math.Sqrt(-2.0 * Ln(u1));
            SinCosTurns(u2, out double sin, out double cos);
            destination[2 * pair] = (float)(r * cos);
            if ((2 * pair) + 1 < destination.Length)
            {
                destination[(2 * pair) + 1] = (float)(r * sin);
            }
        }
    }

    /// <summary>Philox4x32 with 10 rounds.</summary>
    internal static void Philox(uint k0, uint k1, uint c0, uint c1, uint c2, uint c3, out uint o0, out uint o1, out uint o2, out uint o3)
    {
        const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;
        for (int round = 0; round < 10; round++)
        {
            ulong p0 = (ulong)M0 * c0;
            ulong p1 = (ulong)M1 * c2;
            uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0;
            uint hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
            c0 = hi1 ^ c1 ^ k0;
            c1 = lo1;
            c2 = hi0 ^ c3 ^ k1;
            c3 = lo0;
            k0 += W0;
            k1 += W1;
        }

        o0 = c0;
        o1 = c1;
        o2 = c2;
        o3 = c3;
    }

    /// <summary>Natural logarithm of x &gt; 0 (finite, normal), from the exponent bits and 2·atanh series of the mantissa.</summary>
    internal static double Ln(double x)
    {
        const double Ln2 = 0.6931471805599453094;
        long bits = BitConverter.DoubleToInt64Bits(x);
        int e = (int)((bits >> 52) & 0x7FF) - 1023;
        double m = BitConverter.Int64BitsToDouble((bits & 0x000FFFFFFFFFFFFFL) | 0x3FF0000000000000L); // [1, 2)
        if (m > 1.4142135623730951)
        {
            m *= 0.5;
            e += 1;
        }

        // ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716, s² <= 0.0295: 13 odd terms reach 1e-19.
        double s = (m - 1.0) / (m + 1.0);
        double s2 = s * s;
        double poly = 1.0 / 25;
        for (int k = 11; k >= 0; k--)
        {
            poly = (1.0 / ((2 * k) + 1)) + (s2 * poly);
        }

        return (e * Ln2) + (2.0 * s * poly);
    }

    /// <summary>sin and cos of 2π·u for u in [0, 1): exact quadrant reduction on u, Taylor series on |θ| ≤ π/4.</summary>
    internal static void SinCosTurns(double u, out double sin, out double cos)
    {
        const double HalfPi = 1.5707963267948966192;
        double u4 = u * 4.0; // exact
        double q = Math.Floor(u4 + 0.5); // nearest quadrant, 0..4
        double r = u4 - q; // exact, in [-0.5, 0.5]
        double t = r * HalfPi;
        double t2 = t * t;

        // sin t = t (1 - t²/3! (1 - t²/(4·5) (1 - ...))), cos t = 1 - t²/2! (1 - t²/(3·4) (...)); up to t^17 / t^18.
        double sp = 1.0, cp = 1.0;
        for (int k = 8; k >= 1; k--)
        {
            sp = 1.0 - (t2 / ((2.0 * k) * ((2.0 * k) + 1.0)) * sp);
            cp = 1.0 - (t2 / (((2.0 * k) - 1.0) * (2.0 * k)) * cp);
        }

        double st = t * sp, ct = cp;
        switch ((int)q & 3)
        {
            case 0:
                sin = st;
                cos = ct;
                break;
            case 1:
                sin = ct;
                cos = -st;
                break;
            case 2:
                sin = -st;
                cos = -ct;
                break;
            default:
                sin = -ct;
                cos = st;
                break;
        }
    }
}
