namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>RGB8 images ↔ CHW float tensors in [-1, 1] (v / 127.5 - 1), resampled to the native size.</summary>
public static class ImageConversion
{
    /// <summary>
    /// Converts to a 3 × size × size tensor. Larger images are downscaled by area averaging (each target pixel averages
    /// its source footprint), smaller ones are upscaled by nearest neighbour.
    /// </summary>
    public static float[] ToTensor(RgbImage image, int size)
    {
        var t = new float[3 * size * size];
        int plane = size * size;
        for (int y = 0; y < size; y++)
        {
            int y0 = y * image.Height / size, y1 = Math.Max(y0 + 1, (y + 1) * image.Height / size);
            for (int x = 0; x < size; x++)
            {
                int x0 = x * image.Width / size, x1 = Math.Max(x0 + 1, (x + 1) * image.Width / size);
                for (int c = 0; c < 3; c++)
                {
                    int sum = 0;
                    for (int sy = y0; sy < y1; sy++)
                    {
                        for (int sx = x0; sx < x1; sx++)
                        {
                            sum += image.Pixels[(((sy * image.Width) + sx) * 3) + c];
                        }
                    }

                    float v = (float)sum / ((y1 - y0) * (x1 - x0));
                    t[(c * plane) + (y * size) + x] = (v / 127.5f) - 1f;
                }
            }
        }

        return t;
    }

    /// <summary>Converts a 3 × size × size tensor in [-1, 1] to RGB8: round((v + 1) · 127.5), clamped.</summary>
    public static RgbImage ToImage(ReadOnlySpan<float> tensor, int size)
    {
        var pixels = new byte[3 * size * size];
        int plane = size * size;
        for (int i = 0; i < plane; i++)
        {
            for (int c = 0; c < 3; c++)
            {
                float v = (tensor[(c * plane) + i] + 1f) * 127.5f;
                pixels[(i * 3) + c] = (byte)Math.Clamp((int)MathF.Floor(v + 0.5f), 0, 255);
            }
        }

        return new RgbImage(size, size, pixels);
    }
}
