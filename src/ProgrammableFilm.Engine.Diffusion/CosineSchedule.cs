namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>The cosine noise schedule and DDIM timesteps of docs/model.md.</summary>
public static class CosineSchedule
{
    /// <summary>alpha_bar[t] = f(t+1) / f(0), f(t) = cos(((t/T + 0.008) / 1.008) π/2)², clipped to [1e-5, 0.9999]; float64 then float32.</summary>
    public static float[] AlphaBar(int T)
    {
        static double F(double t, int total) => Math.Pow(Math.Cos(((t / total) + 0.008) / 1.008 * Math.PI / 2), 2);
        double f0 = F(0, T);
        var ab = new float[T];
        for (int t = 0; t < T; t++)
        {
            ab[t] = (float)Math.Clamp(F(t + 1, T) / f0, 1e-5, 0.9999);
        }

        return ab;
    }

    /// <summary>t_i = floor((steps - i) T / steps) - 1 for i = 0..steps-1 (20 steps: 999, 949, ..., 49).</summary>
    public static int[] Timesteps(int steps, int T)
    {
        var ts = new int[steps];
        for (int i = 0; i < steps; i++)
        {
            ts[i] = (int)Math.Floor((double)(steps - i) * T / steps) - 1;
        }

        return ts;
    }
}
