using System.Text.Json;
using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Imaging;
using ProgrammableFilm.Storage;
using ProgrammableFilm.Worker;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The worker's in-process encoder (FFmpeg's libraries through <see cref="LibavEncoder"/>) against the ffmpeg
/// program it replaces for assembly: the same frames give the same kind of MP4 and the same pictures, and a shot it
/// cannot encode fails with FFmpeg's reason and leaves no video behind.
/// </summary>
public class InProcessEncoderTests
{
    private const int Fps = 12;
    private const int FrameCount = 18;

    [Fact]
    public async Task The_in_process_encoder_writes_the_MP4_the_ffmpeg_program_writes()
    {
        Assert.True(LibavEncoder.IsAvailable, $"this machine's FFmpeg libraries are not the ones the encoder knows: {LibavEncoder.UnavailableReason}");
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-encoder");
        try
        {
            var storage = new ShotStorage(folder);
            var frames = MovingSquare(48, 32);
            Directory.CreateDirectory(storage.FullPath("shot/frames"));
            for (var i = 0; i < frames.Count; i++)
            {
                Png.Write(frames[i], storage.FullPath(ShotStorage.FramePath("shot", i)));
            }

            var tags = new Dictionary<string, string>(StringComparer.Ordinal) { ["pfilm_take"] = "take-07", ["comment"] = "made by a model" };
            var inProcess = await new FfmpegAssembler(new WorkerOptions(), storage).AssembleAsync("shot", frames, Fps, 96, 64, tags, CancellationToken.None, "shot/in-process.mp4");
            var program = await new FfmpegAssembler(new WorkerOptions { EncodeInProcess = false }, storage).AssembleAsync("shot", frames, Fps, 96, 64, tags, CancellationToken.None, "shot/program.mp4");

            var expected = new FfprobeResult("h264", 96, 64, FrameCount, Fps);
            Assert.Equal(expected, await FfprobeResult.ProbeAsync(storage.FullPath(inProcess)));
            Assert.Equal(expected, await FfprobeResult.ProbeAsync(storage.FullPath(program)));
            Assert.Equal(("yuv420p", "take-07", "made by a model"), await FormatAsync(storage.FullPath(inProcess)));
            Assert.True(await MoovBeforeMdatAsync(storage.FullPath(inProcess)), "the in-process MP4 is not faststart: its index follows the media");

            var ours = await DecodeAsync(storage.FullPath(inProcess), folder);
            var theirs = await DecodeAsync(storage.FullPath(program), folder);
            Assert.Equal(theirs.Length, ours.Length);
            var difference = ours.Zip(theirs, (a, b) => Math.Abs(a - b)).Average();
            Assert.True(difference < 1, $"the two encodes' pictures differ by {difference:F2} per channel on average");
            Assert.Empty(Directory.GetFiles(storage.FullPath("shot"), "*.tmp.mp4"));
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    [Fact]
    public async Task A_shot_whose_frames_change_size_fails_with_a_reason_and_leaves_no_video()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-encoder");
        try
        {
            var storage = new ShotStorage(folder);
            Directory.CreateDirectory(storage.FullPath("shot"));
            List<RgbImage> frames = [.. MovingSquare(48, 32).Take(5), new RgbImage(40, 32)];
            var error = await Assert.ThrowsAsync<AssemblyException>(() =>
                new FfmpegAssembler(new WorkerOptions(), storage).AssembleAsync("shot", frames, Fps, 96, 64, new Dictionary<string, string>(), CancellationToken.None));
            Assert.Equal("frame 5 is 40x32, the shot's first frame 48x32", error.Message);
            Assert.Empty(Directory.GetFiles(storage.FullPath("shot")));
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    /// <summary>A white square crossing a gradient: motion and colour for the encoder to get wrong.</summary>
    private static List<RgbImage> MovingSquare(int width, int height) =>
    [
        .. Enumerable.Range(0, FrameCount).Select(frame =>
        {
            var image = new RgbImage(width, height);
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    var inSquare = x >= frame * 2 && x < (frame * 2) + 10 && y >= 10 && y < 20;
                    var offset = ((y * width) + x) * 3;
                    image.Pixels[offset] = inSquare ? (byte)255 : (byte)(x * 5);
                    image.Pixels[offset + 1] = inSquare ? (byte)255 : (byte)(y * 7);
                    image.Pixels[offset + 2] = inSquare ? (byte)255 : (byte)90;
                }
            }

            return image;
        }),
    ];

    private static async Task<(string PixelFormat, string Take, string Comment)> FormatAsync(string video)
    {
        var (exitCode, output, error) = await TestEnvironment.RunAsync("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=pix_fmt:format_tags", "-of", "json", video]);
        Assert.True(exitCode == 0, error);
        var root = JsonDocument.Parse(output).RootElement;
        var tags = root.GetProperty("format").GetProperty("tags");
        return (root.GetProperty("streams")[0].GetProperty("pix_fmt").GetString()!, tags.GetProperty("pfilm_take").GetString()!, tags.GetProperty("comment").GetString()!);
    }

    private static async Task<bool> MoovBeforeMdatAsync(string video)
    {
        var bytes = await File.ReadAllBytesAsync(video);
        var text = System.Text.Encoding.Latin1.GetString(bytes);
        return text.IndexOf("moov", StringComparison.Ordinal) is var moov and >= 0 && moov < text.IndexOf("mdat", StringComparison.Ordinal);
    }

    private static async Task<byte[]> DecodeAsync(string video, string folder)
    {
        var raw = Path.Combine(folder, $"{Path.GetFileNameWithoutExtension(video)}.rgb");
        var (exitCode, _, error) = await TestEnvironment.RunAsync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-i", video, "-f", "rawvideo", "-pix_fmt", "rgb24", raw]);
        Assert.True(exitCode == 0, error);
        return await File.ReadAllBytesAsync(raw);
    }
}
