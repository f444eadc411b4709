using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>A sweep rendered with <c>pfilm render</c> (SQLite, in-process worker), its contact sheet, and <c>pfilm approve --local</c>.</summary>
public class EmbeddedTakeTests
{
    [Fact]
    public async Task A_procedural_seed_by_guidance_sweep_renders_each_seed_once_and_the_local_approval_lands_in_the_manifest()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-takes");
        var spec = Path.Combine(folder, "sweep.yaml");
        await File.WriteAllTextAsync(spec, """
            project: it-local-takes
            shots:
              - name: sweep
                prompt: a blue car racing left to right in the snow
                duration: 1
                fps: 12
                width: 96
                height: 64
                engine: procedural
                keyframeInterval: 4
                variants:
                  grid:
                    seed: [1, 2, 3]
                    guidance: [2, 5]
            """);
        var output = Path.Combine(folder, "renders");
        try
        {
            var (exitCode, stdout, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "render", spec, "--out", output], timeout: TimeSpan.FromMinutes(8));
            Assert.True(exitCode == 0, $"{stdout}\n{stderr}");
            Assert.Contains("takes.html", stdout, StringComparison.Ordinal);

            await using var db = new FarmDbContext(new DbContextOptionsBuilder<FarmDbContext>().UseSqlite($"Data Source={Path.Combine(output, "pfilm.db")}").Options);
            var takes = await db.Shots.AsNoTracking().OrderBy(s => s.TakeNumber).ToListAsync();
            Assert.Equal(6, takes.Count);
            Assert.Single(takes.Select(t => t.LineageId).Distinct());

            // The procedural engine has no sampler: the guidance twins of a seed share every keyframe and segment,
            // rendered and billed once (in the first of the two), copied into the second's folder.
            var reuses = await db.TaskReuses.AsNoTracking().ToListAsync();
            Assert.Equal([2, 4, 6], reuses.Select(r => takes.Single(t => t.Id == r.ShotId).TakeNumber).Distinct().Order());
            var tasks = await db.Tasks.AsNoTracking().ToListAsync();
            Assert.Equal(3 * 4 + 3 * 3 + 6, tasks.Count); // per seed 4 keyframes (0, 4, 8, 11) and 3 segments; an assembly per take
            var billed = await db.Usage.AsNoTracking().ToListAsync();
            Assert.Equal(tasks.Count, billed.Count);
            Assert.Equal(12, billed.Count(u => tasks.Single(t => t.Id == u.TaskId).Kind == "keyframe"));

            static byte[] Frame(string root, string takeFolder, int frame) => File.ReadAllBytes(Path.Combine(root, takeFolder, "frames", $"{frame:D5}.png"));
            Assert.Equal(Frame(output, takes[0].Folder, 4), Frame(output, takes[1].Folder, 4));
            Assert.NotEqual(Frame(output, takes[0].Folder, 4), Frame(output, takes[2].Folder, 4));
            Assert.All(takes, t => Assert.True(t.PromptAdherence > 0.5, $"take {t.TakeNumber}: adherence {t.PromptAdherence}"));

            var probe = await FfprobeResult.ProbeAsync(Path.Combine(output, takes[1].VideoPath!));
            Assert.Equal(12, probe.Frames);
            using (var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, takes[1].ManifestPath!))))
            {
                var reused = manifest.RootElement.GetProperty("reused").EnumerateArray().ToList();
                Assert.Equal(7, reused.Count);
                Assert.All(reused, r => Assert.Equal(1, r.GetProperty("fromTakeNumber").GetInt32()));
                Assert.DoesNotContain(manifest.RootElement.GetProperty("attempts").EnumerateArray(), a => a.GetProperty("kind").GetString() == "keyframe");
            }

            var sheet = await File.ReadAllTextAsync(Path.Combine(output, takes[0].JobId.ToString("N"), "sweep", "takes.html"));
            Assert.Equal(6, sheet.Split("data-take=", StringSplitOptions.None).Length - 1);
            Assert.Contains($"src=\"../../{takes[3].Folder}/frames/00004.png\"", sheet, StringComparison.Ordinal);

            (exitCode, stdout, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "approve", takes[2].Id.ToString(), "--local", output, "--note", "sharpest"], timeout: TimeSpan.FromMinutes(4));
            Assert.True(exitCode == 0, $"{stdout}\n{stderr}");
            Assert.Contains("current version: v1 = take 3", stdout, StringComparison.Ordinal);
            using (var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, takes[2].ManifestPath!))))
            {
                var approval = Assert.Single(manifest.RootElement.GetProperty("take").GetProperty("approvals").EnumerateArray());
                Assert.StartsWith("local:", approval.GetProperty("approvedBy").GetString(), StringComparison.Ordinal);
                Assert.Equal("sharpest", approval.GetProperty("note").GetString());
            }

            Assert.Contains("class=\"take current\" data-take=\"3\"", await File.ReadAllTextAsync(Path.Combine(output, takes[0].JobId.ToString("N"), "sweep", "takes.html")), StringComparison.Ordinal);
            (exitCode, _, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "approve", takes[2].Id.ToString(), "--local", output], timeout: TimeSpan.FromMinutes(4));
            Assert.True(exitCode == 5, stderr);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
