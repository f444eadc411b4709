using System.Globalization;
using System.Text.Json;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>What ffprobe says about a video's first stream, counted by decoding every frame.</summary>
public sealed record FfprobeResult(string Codec, int Width, int Height, int Frames, double FramesPerSecond)
{
    public static async Task<FfprobeResult> ProbeAsync(string path)
    {
        var (exitCode, output, error) = await TestEnvironment.RunAsync("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height,nb_read_frames,r_frame_rate", "-of", "json", path]);
        Assert.True(exitCode == 0, $"ffprobe failed: {error}");
        var stream = JsonDocument.Parse(output).RootElement.GetProperty("streams")[0];
        var rate = stream.GetProperty("r_frame_rate").GetString()!.Split('/');
        return new FfprobeResult(
            stream.GetProperty("codec_name").GetString()!,
            stream.GetProperty("width").GetInt32(),
            stream.GetProperty("height").GetInt32(),
            int.Parse(stream.GetProperty("nb_read_frames").GetString()!, CultureInfo.InvariantCulture),
            double.Parse(rate[0], CultureInfo.InvariantCulture) / double.Parse(rate[1], CultureInfo.InvariantCulture));
    }
}
