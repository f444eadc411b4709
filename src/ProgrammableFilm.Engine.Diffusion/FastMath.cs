using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>
/// Vector exp for SiLU: e^x = 2^n · e^r, n = round(x / ln 2), r = x − n ln 2 (two-constant Cody–Waite), e^r by a
/// degree-6 Taylor polynomial on |r| ≤ ln2/2 (relative error below 2e-7). Inputs are clamped to [−87, 88]. Plain
/// multiply/add only, so it is as deterministic as the rest of the arithmetic and always fully optimised (unlike the
/// generic BCL implementation, which was showing up at tier 0 in profiles).
/// </summary>
internal static class FastMath
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693145752f;
    private const float Ln2Lo = 1.42860677e-6f;
    private const float C2 = 1f / 2, C3 = 1f / 6, C4 = 1f / 24, C5 = 1f / 120, C6 = 1f / 720;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(-87f)), Vector512.Create(88f));
        var n = Vector512.Round(x * Vector512.Create(Log2E));
        var r = x - (n * Vector512.Create(Ln2Hi));
        r -= n * Vector512.Create(Ln2Lo);
        var p = (Vector512.Create(C6) * r) + Vector512.Create(C5);
        p = (p * r) + Vector512.Create(C4);
        p = (p * r) + Vector512.Create(C3);
        p = (p * r) + Vector512.Create(C2);
        p = (p * r) + Vector512<float>.One;
        p = (p * r) + Vector512<float>.One;
        var scale = (Vector512.ConvertToInt32(n) + Vector512.Create(127)) << 23;
        return p * scale.AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(-87f)), Vector256.Create(88f));
        var n = Vector256.Round(x * Vector256.Create(Log2E));
        var r = x - (n * Vector256.Create(Ln2Hi));
        r -= n * Vector256.Create(Ln2Lo);
        var p = (Vector256.Create(C6) * r) + Vector256.Create(C5);
        p = (p * r) + Vector256.Create(C4);
        p = (p * r) + Vector256.Create(C3);
        p = (p * r) + Vector256.Create(C2);
        p = (p * r) + Vector256<float>.One;
        p = (p * r) + Vector256<float>.One;
        var scale = (Vector256.ConvertToInt32(n) + Vector256.Create(127)) << 23;
        return p * scale.AsSingle();
    }

    /// <summary>Scalar twin of the vector exp (same operations in the same order).</summary>
    public static float Exp(float x)
    {
        x = Math.Min(Math.Max(x, -87f), 88f);
        float n = MathF.Round(x * Log2E);
        float r = x - (n * Ln2Hi);
        r -= n * Ln2Lo;
        float p = (C6 * r) + C5;
        p = (p * r) + C4;
        p = (p * r) + C3;
        p = (p * r) + C2;
        p = (p * r) + 1f;
        p = (p * r) + 1f;
        return p * BitConverter.Int32BitsToSingle(((int)n + 127) << 23);
    }
}
