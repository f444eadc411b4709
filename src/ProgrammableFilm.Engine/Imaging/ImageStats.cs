namespace ProgrammableFilm.Engine.Imaging;

/// <summary>Where the pixels near a colour are: their count and centroid, in pixel coordinates.</summary>
/// <param name="Count">Number of matching pixels.</param>
/// <param name="X">Mean column of the matching pixels (pixel centres at x + 0.5).</param>
/// <param name="Y">Mean row of the matching pixels.</param>
public readonly record struct ColourCentroid(int Count, double X, double Y);

/// <summary>Measurements on images, for tests and quality checks.</summary>
public static class ImageStats
{
    /// <summary>Mean R, G, B of the rectangle at (<paramref name="x"/>, <paramref name="y"/>) of the given size.</summary>
    public static (double R, double G, double B) MeanColour(RgbImage image, int x, int y, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (x < 0 || y < 0 || width < 1 || height < 1 || x + width > image.Width || y + height > image.Height)
        {
            throw new ArgumentOutOfRangeException(nameof(width), "The region must lie inside the image and not be empty.");
        }

        long r = 0, g = 0, b = 0;
        for (var row = y; row < y + height; row++)
        {
            var offset = ((row * image.Width) + x) * 3;
            for (var i = 0; i < width; i++, offset += 3)
            {
                r += image.Pixels[offset];
                g += image.Pixels[offset + 1];
                b += image.Pixels[offset + 2];
            }
        }

        double n = width * height;
        return (r / n, g / n, b / n);
    }

    /// <summary>Mean colour of the whole image.</summary>
    public static (double R, double G, double B) MeanColour(RgbImage image) => MeanColour(image, 0, 0, image.Width, image.Height);

    /// <summary>
    /// Count and centroid of the pixels whose largest channel difference to <paramref name="colour"/> is at most
    /// <paramref name="tolerance"/>; the centroid is NaN when no pixel matches.
    /// </summary>
    public static ColourCentroid CentroidNear(RgbImage image, Rgb colour, int tolerance)
    {
        ArgumentNullException.ThrowIfNull(image);
        var count = 0;
        double sumX = 0, sumY = 0;
        for (var y = 0; y < image.Height; y++)
        {
            for (var x = 0; x < image.Width; x++)
            {
                var offset = ((y * image.Width) + x) * 3;
                var pixel = new Rgb(image.Pixels[offset], image.Pixels[offset + 1], image.Pixels[offset + 2]);
                if (pixel.DistanceTo(colour) <= tolerance)
                {
                    count++;
                    sumX += x;
                    sumY += y;
                }
            }
        }

        return count == 0 ? new ColourCentroid(0, double.NaN, double.NaN) : new ColourCentroid(count, sumX / count, sumY / count);
    }
}
