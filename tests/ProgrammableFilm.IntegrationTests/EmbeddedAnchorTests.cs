using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ProgrammableFilm.Cli;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Takes;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Engine.Scene;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>A sequence's consistency anchors on real renders (the procedural engine, embedded farm, real ffmpeg).</summary>
public class EmbeddedAnchorTests
{
    private const string Shots = """
        shots:
          - {name: inherits, prompt: a ball bouncing left to right, duration: 1, fps: 8, width: 64, height: 64, engine: procedural, keyframeInterval: 4}
          - {name: overrides, prompt: a blue ball bouncing left to right, duration: 1, fps: 8, width: 64, height: 64, engine: procedural, keyframeInterval: 4}
          - {name: diffused, prompt: a ball bouncing left to right, duration: 1, fps: 8, width: 64, height: 64, engine: diffusion, steps: 8, keyframeInterval: 4}
        """;

    [Fact]
    public async Task Anchors_change_the_shots_that_inherit_them_and_the_check_measures_the_drift_of_those_that_override()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-anchors");
        try
        {
            await using var host = await EmbeddedTestFarm.StartAsync(folder, 1);
            var anchored = await RenderAsync(host, "project: it-anchors\nanchors: {background: snow, colour: green, seed: 5}\n" + Shots);
            // The same seed family without the style: what differs between the two renders is the anchors' words.
            var plain = await RenderAsync(host, "project: it-anchors\nanchors: {seed: 5}\n" + Shots);

            // The next iteration of an anchored take is still anchored: the same words, the record, the drift check.
            var takes = host.Services.GetRequiredService<TakeReviews>();
            var approved = anchored.Shots.Single(s => s.Name == "inherits");
            Assert.Equal(ReviewOutcome.Done, (await takes.ApproveAsync(approved.Id, new Reviewer(null, "director"), null, null, CancellationToken.None)).Outcome);
            var (iteration, invalid, conflict) = await takes.IterateAsync(approved.Id, new SpecList([new SpecMap([new("seed", new SpecScalar("9", false))])]), null, null, false, CancellationToken.None);
            Assert.True(iteration is not null, $"{invalid?.Errors.FirstOrDefault()} {conflict}");
            var next = await EmbeddedDiffusionTests.WaitAsync(host.Services.GetRequiredService<JobReports>(), iteration.Id);
            Assert.True(next.State == "Succeeded", next.Error);
            var listed = (await takes.ListAsync(approved.Id, CancellationToken.None))!.Takes;
            await host.StopAsync();
            using (var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, next.Shots.Single().Manifest!))))
            {
                // The takes list reports the same check as the manifest, take by take.
                var metrics = manifest.RootElement.GetProperty("metrics");
                Assert.Equal((metrics.GetProperty("anchor_palette_drift").GetDouble(), metrics.GetProperty("anchor_colour_drift").GetDouble()),
                    (listed[^1].Metrics.AnchorPaletteDrift!.Value, listed[^1].Metrics.AnchorColourDrift!.Value));

                var anchors = manifest.RootElement.GetProperty("anchors");
                Assert.Equal(("snow", "green"), (anchors.GetProperty("background").GetString(), anchors.GetProperty("colour").GetString()));
                Assert.Equal(approved.Id.ToString(), manifest.RootElement.GetProperty("take").GetProperty("parentTake").GetString());
                Assert.Equal(ApprovedPrompt(folder, anchored), manifest.RootElement.GetProperty("shot").GetProperty("prompt").GetString());
                Assert.True(manifest.RootElement.GetProperty("metrics").GetProperty("anchor_colour_drift").GetDouble() < 40);
            }

            static byte[] Frame(string root, JobStatus job, string shot, int frame) =>
                File.ReadAllBytes(Path.Combine(root, Path.GetDirectoryName(job.Shots.Single(s => s.Name == shot).Video!)!, "frames", $"{frame:D5}.png"));
            Assert.NotEqual(Frame(folder, plain, "inherits", 4), Frame(folder, anchored, "inherits", 4));

            // Measured on both engines: the shots that inherit the anchors are far closer to them than the same shots
            // rendered without (their drift measured against the same anchors, on the same keyframes). The colour is
            // not red, the colour a prompt without one gets, so that the colour anchor has something to change.
            foreach (var shot in new[] { "inherits", "diffused" })
            {
                var withAnchors = Metrics(folder, anchored, shot);
                var without = AnchorConsistency.Measure("snow", "green", "a ball bouncing left to right", 5, 8,
                    [.. new[] { 0, 4, 7 }.Select(k => (k, PlateImages.Read(Path.Combine(folder, Path.GetDirectoryName(plain.Shots.Single(s => s.Name == shot).Video!)!, "frames", $"{k:D5}.png"))))]);
                var measured = $"{shot}: anchored {withAnchors}, without anchors palette {without.Palette:F1}, colour {without.ObjectColour:F1}";

                // The job's status reports each shot's drift, as its manifest does; a shot without anchors has none.
                var reported = anchored.Shots.Single(s => s.Name == shot);
                Assert.Equal((withAnchors.GetProperty("anchor_palette_drift").GetDouble(), withAnchors.GetProperty("anchor_colour_drift").GetDouble()), (reported.AnchorPaletteDrift!.Value, reported.AnchorColourDrift!.Value));
                Assert.Equal((null, null), (plain.Shots.Single(s => s.Name == shot).AnchorPaletteDrift, plain.Shots.Single(s => s.Name == shot).AnchorColourDrift));
                Assert.True(withAnchors.GetProperty("anchor_palette_drift").GetDouble() < without.Palette / 2, measured);
                Assert.True(withAnchors.GetProperty("anchor_colour_drift").GetDouble() < without.ObjectColour / 2, measured);
            }

            var inherits = Metrics(folder, anchored, "inherits");
            var overrides = Metrics(folder, anchored, "overrides");
            Assert.True(inherits.GetProperty("anchor_colour_drift").GetDouble() < 40, inherits.ToString());
            Assert.True(overrides.GetProperty("anchor_colour_drift").GetDouble() > 2 * inherits.GetProperty("anchor_colour_drift").GetDouble(), $"{inherits}\n{overrides}");
            Assert.True(inherits.GetProperty("anchor_palette_drift").GetDouble() < 20, inherits.ToString());
            Assert.True(overrides.GetProperty("anchor_palette_drift").GetDouble() < 20, overrides.ToString());
            Assert.False(Metrics(folder, plain, "inherits").TryGetProperty("anchor_palette_drift", out _));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static async Task<JobStatus> RenderAsync(EmbeddedTestFarm host, string yaml)
    {
        var read = JobSpecReader.ReadYaml(yaml);
        Assert.True(read.IsValid, string.Join("; ", read.Errors));
        var job = await host.Services.GetRequiredService<JobSubmission>().SubmitAsync(read.Spec!, CancellationToken.None);
        var status = await EmbeddedDiffusionTests.WaitAsync(host.Services.GetRequiredService<JobReports>(), job.Id);
        Assert.True(status.State == "Succeeded", status.Error);
        return status;
    }

    private static string ApprovedPrompt(string root, JobStatus job)
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, job.Shots.Single(s => s.Name == "inherits").Manifest!)));
        return manifest.RootElement.GetProperty("shot").GetProperty("prompt").GetString()!;
    }

    private static JsonElement Metrics(string root, JobStatus job, string shot)
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, job.Shots.Single(s => s.Name == shot).Manifest!)));
        return manifest.RootElement.GetProperty("metrics").Clone();
    }
}
