using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ProgrammableFilm.Cli;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Imaging;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The interpolation stage on real diffusion renders and real ffmpeg, next to the alternative it was chosen over:
/// the same shot rendered at the doubled rate by the model's in-between mode.
/// </summary>
public class EmbeddedInterpolationTests
{
    [Fact]
    public async Task Interpolation_doubles_the_frame_count_with_less_flicker_than_duplication_or_the_models_inbetweens()
    {
        var spec = JobSpecReader.ReadYaml("""
            project: it-interpolation
            shots:
              - name: interpolated
                prompt: a red ball bouncing left to right on a green field
                duration: 2
                fps: 8
                width: 128
                height: 128
                steps: 12
                seed: 7
                engine: diffusion
                keyframeInterval: 4
                interpolate: 2
              - name: inbetweens
                prompt: a red ball bouncing left to right on a green field
                duration: 2
                fps: 16
                width: 64
                height: 64
                steps: 12
                seed: 7
                engine: diffusion
                keyframeInterval: 8
            """).Spec!;
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-interpolation");
        try
        {
            await using var host = await EmbeddedTestFarm.StartAsync(folder, 1);
            var job = await host.Services.GetRequiredService<JobSubmission>().SubmitAsync(spec, CancellationToken.None);
            var status = await EmbeddedDiffusionTests.WaitAsync(host.Services.GetRequiredService<JobReports>(), job.Id);
            await host.StopAsync();

            Assert.True(status.State == "Succeeded", status.Error);
            var shot = status.Shots.Single(s => s.Name == "interpolated");
            var shotFolder = Path.GetDirectoryName(Path.Combine(folder, shot.Video!))!;
            var video = await FfprobeResult.ProbeAsync(Path.Combine(folder, shot.Video!));
            var baseVideo = await FfprobeResult.ProbeAsync(Path.Combine(shotFolder, "base.mp4"));
            Assert.Equal((16, 8.0), (baseVideo.Frames, baseVideo.FramesPerSecond));
            Assert.Equal((32, 16.0), (video.Frames, video.FramesPerSecond));

            // Upscaling at assembly stays: the model's 64x64 frames are interpolated at that size, then upscaled.
            Assert.Equal((128, 128), (video.Width, video.Height));

            var rendered = ReadFrames(Path.Combine(shotFolder, "frames"));
            var interpolated = ReadFrames(Path.Combine(shotFolder, "interpolated"));
            Assert.Equal(32, interpolated.Count);
            var duplicatedFlicker = FlickerMetric.Compute([.. rendered.SelectMany(f => new[] { f, f })]);
            var interpolatedFlicker = FlickerMetric.Compute(interpolated);
            var inbetweenFlicker = FlickerMetric.Compute(ReadFrames(Path.Combine(folder, Path.GetDirectoryName(status.Shots.Single(s => s.Name == "inbetweens").Video!)!, "frames")));
            Assert.True(interpolatedFlicker < duplicatedFlicker, $"interpolated {interpolatedFlicker:F2}, duplicated {duplicatedFlicker:F2}");
            Assert.True(interpolatedFlicker < inbetweenFlicker, $"interpolated {interpolatedFlicker:F2}, the model's in-betweens at 16 fps {inbetweenFlicker:F2}");

            using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder, shot.Manifest!)));
            var interpolation = manifest.RootElement.GetProperty("interpolation");
            Assert.Equal((2, 8, 16, 16, 32), (interpolation.GetProperty("factor").GetInt32(), interpolation.GetProperty("renderedFps").GetInt32(),
                interpolation.GetProperty("outputFps").GetInt32(), interpolation.GetProperty("renderedFrames").GetInt32(), interpolation.GetProperty("outputFrames").GetInt32()));
            Assert.Contains("minterpolate", interpolation.GetProperty("method").GetString(), StringComparison.Ordinal);
            Assert.Equal(("64x64", "true"), (manifest.RootElement.GetProperty("engine").GetProperty("native_resolution").GetString(), manifest.RootElement.GetProperty("engine").GetProperty("upscaled_at_assembly").GetString()));
            var metrics = manifest.RootElement.GetProperty("metrics");
            Assert.Equal(interpolatedFlicker, metrics.GetProperty("interpolated_flicker").GetDouble(), 9);
            Assert.Equal(duplicatedFlicker, metrics.GetProperty("duplicated_flicker").GetDouble(), 9);

            // Its own task kind, billed like any other: one succeeded attempt with its device time and cost.
            var attempt = Assert.Single(manifest.RootElement.GetProperty("attempts").EnumerateArray(), a => a.GetProperty("kind").GetString() == "interpolate");
            Assert.Equal("Succeeded", attempt.GetProperty("state").GetString());
            Assert.True(attempt.GetProperty("deviceSeconds").GetDouble() > 0);
            Assert.True(attempt.GetProperty("cost").GetDecimal() > 0);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static List<RgbImage> ReadFrames(string folder) => [.. Directory.GetFiles(folder, "*.png").Order(StringComparer.Ordinal).Select(PlateImages.Read)];
}
