using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ProgrammableFilm.Cli;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The diffusion engine in the farm: embedded mode, keyframes and conditioned segments, upscaled at assembly.</summary>
public class EmbeddedDiffusionTests
{
    [Theory]
    [InlineData("native")]
    [InlineData("torch")] // pfilm render --diffusion-engine torch
    public async Task A_diffusion_shot_renders_in_embedded_mode_and_its_manifest_names_the_model_and_unknown_words(string implementation)
    {
        var spec = JobSpecReader.ReadYaml("""
            project: it-diffusion
            shots:
              - name: boat
                prompt: a majestic yellow boat sailing left to right on the ocean
                duration: 1
                fps: 8
                width: 128
                height: 128
                steps: 4
                guidance: 3
                seed: 11
                engine: diffusion
                keyframeInterval: 4
            """).Spec!;
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-diffusion");
        try
        {
            await using var host = await EmbeddedTestFarm.StartAsync(folder, 1, implementation);
            var job = await host.Services.GetRequiredService<JobSubmission>().SubmitAsync(spec, CancellationToken.None);
            var status = await WaitAsync(host.Services.GetRequiredService<JobReports>(), job.Id);
            await host.StopAsync();

            Assert.True(status.State == "Succeeded", status.Error);
            var shot = Assert.Single(status.Shots);
            var probe = await FfprobeResult.ProbeAsync(Path.Combine(folder, shot.Video!));
            Assert.Equal((128, 128, 8), (probe.Width, probe.Height, probe.Frames));

            using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder, shot.Manifest!)));
            var engine = manifest.RootElement.GetProperty("engine");
            Assert.Equal("diffusion", engine.GetProperty("engine").GetString());
            Assert.Equal("64x64", engine.GetProperty("native_resolution").GetString());
            Assert.Equal("true", engine.GetProperty("upscaled_at_assembly").GetString());
            Assert.Equal(implementation, engine.GetProperty("implementation").GetString());
            Assert.Equal("cpu", engine.GetProperty("device").GetString());
            Assert.Equal("fp32", engine.GetProperty("precision").GetString());
            var weights = Path.Combine(TestEnvironment.RepositoryRoot, "models", "pf-scene-v3.safetensors");
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(weights))), engine.GetProperty("weights_sha256").GetString());
            Assert.Equal(["majestic"], manifest.RootElement.GetProperty("unknownPromptWords").EnumerateArray().Select(w => w.GetString()!));
            var segments = manifest.RootElement.GetProperty("attempts").EnumerateArray().Where(a => a.GetProperty("kind").GetString() == "segment").ToList();
            Assert.Equal(2, segments.Count);
            Assert.All(segments, s => Assert.Equal("inbetween", s.GetProperty("facts").GetProperty("mode").GetString()));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    internal static async Task<JobStatus> WaitAsync(JobReports reports, Guid jobId)
    {
        var deadline = DateTime.UtcNow.AddMinutes(4);
        while (DateTime.UtcNow < deadline)
        {
            var status = (await reports.StatusAsync(jobId, CancellationToken.None))!;
            if (status.State is "Succeeded" or "Failed")
            {
                return status;
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"job {jobId} did not finish in 4 minutes");
    }
}
