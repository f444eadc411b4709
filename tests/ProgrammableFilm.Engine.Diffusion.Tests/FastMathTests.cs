using System.Runtime.Intrinsics;

namespace ProgrammableFilm.Engine.Diffusion.Tests;

public sealed class FastMathTests
{
    [Fact]
    public void Vector_and_scalar_exp_agree_with_the_platform_to_3e_7_relative()
    {
        for (float x = -80f; x <= 80f; x += 0.0137f)
        {
            double expected = Math.Exp(x);
            Assert.True(Math.Abs(FastMath.Exp(x) - expected) <= 3e-7 * expected, $"exp({x})");
            Assert.Equal(FastMath.Exp(x), FastMath.Exp(Vector256.Create(x)).GetElement(3));
            if (Vector512.IsHardwareAccelerated)
            {
                Assert.Equal(FastMath.Exp(x), FastMath.Exp(Vector512.Create(x)).GetElement(9));
            }
        }
    }
}
