using System.Diagnostics;
using ProgrammableFilm.Engine.Imaging;
using ProgrammableFilm.Engine.Procedural;
using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.Engine.Tests.Imaging;

public sealed class PngTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("pf-png-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(64, 64)]
    public void Noise_round_trips_exactly(int width, int height)
    {
        var image = Noise(width, height, seed: (ulong)(width * 31 + height));

        Assert.Equal(image.Pixels, RoundTrip(image).Pixels);
    }

    [Fact]
    public void Rendered_frame_round_trips_exactly()
    {
        var image = ProceduralRenderer.RenderFrame(SceneDescription.FromPrompt("a white bird over the night city", 3, SceneVocabulary.Default), 0.5, 160, 90);

        var decoded = RoundTrip(image);

        Assert.Equal((160, 90), (decoded.Width, decoded.Height));
        Assert.Equal(image.Pixels, decoded.Pixels);
    }

    [Fact]
    public void Corrupted_chunk_is_rejected_by_its_crc()
    {
        using var stream = new MemoryStream();
        Png.Write(Noise(4, 4, 1), stream);
        var bytes = stream.ToArray();
        bytes[20] ^= 0xFF; // inside IHDR's data

        Assert.Throws<InvalidDataException>(() => Png.Read(new MemoryStream(bytes)));
    }

    [Theory]
    [InlineData("rgb24")]
    [InlineData("rgba")]
    public void Reads_png_written_by_ffmpeg(string pixelFormat)
    {
        var png = Path.Combine(_directory, $"ffmpeg-{pixelFormat}.png");
        var raw = Path.Combine(_directory, $"ffmpeg-{pixelFormat}.rgb");
        Ffmpeg($"-f lavfi -i testsrc=size=67x41 -frames:v 1 -pix_fmt {pixelFormat} {png}");
        Ffmpeg($"-i {png} -f rawvideo -pix_fmt rgb24 {raw}");

        using var file = File.OpenRead(png);
        var image = Png.Read(file);

        Assert.Equal((67, 41), (image.Width, image.Height));
        Assert.Equal(File.ReadAllBytes(raw), image.Pixels);
    }

    [Fact]
    public void Ffmpeg_decodes_our_png_to_the_same_pixels()
    {
        var image = ProceduralRenderer.RenderFrame(SceneDescription.FromPrompt("a green boat at sunset", 8, SceneVocabulary.Default), 0.2, 75, 40);
        var png = Path.Combine(_directory, "ours.png");
        var raw = Path.Combine(_directory, "ours.rgb");
        Png.Write(image, png);

        Ffmpeg($"-i {png} -f rawvideo -pix_fmt rgb24 {raw}");

        Assert.Equal(image.Pixels, File.ReadAllBytes(raw));
    }

    private static RgbImage RoundTrip(RgbImage image)
    {
        using var stream = new MemoryStream();
        Png.Write(image, stream);
        stream.Position = 0;
        return Png.Read(stream);
    }

    private static RgbImage Noise(int width, int height, ulong seed)
    {
        var random = new SplitMix64(seed);
        var image = new RgbImage(width, height);
        for (var i = 0; i < image.Pixels.Length; i++)
        {
            image.Pixels[i] = (byte)random.NextUInt64();
        }

        return image;
    }

    private static void Ffmpeg(string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo("ffmpeg", $"-loglevel error -y {arguments}") { RedirectStandardError = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"ffmpeg {arguments}: {error}");
    }
}
