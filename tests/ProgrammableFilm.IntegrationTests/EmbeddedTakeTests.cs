using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;

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

            // Local reviews refuse what the farm's API refuses: a rejection without a reason.
            (exitCode, _, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "approve", takes[4].Id.ToString(), "--local", output, "--reject-others", " "], timeout: TimeSpan.FromMinutes(4));
            Assert.True(exitCode == 2, stderr);
            Assert.Contains("pfilm: cannot approve: --reject-others: is required", stderr, StringComparison.Ordinal);
            Assert.Contains("class=\"take current\" data-take=\"3\"", await File.ReadAllTextAsync(Path.Combine(output, takes[0].JobId.ToString("N"), "sweep", "takes.html")), StringComparison.Ordinal);
            (exitCode, _, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "approve", takes[2].Id.ToString(), "--local", output], timeout: TimeSpan.FromMinutes(4));
            Assert.True(exitCode == 5, stderr);

            // The next iteration reuses what the approved take (seed 2) already rendered: take 7 keeps seed 2 under a
            // guidance the procedural engine does not read, so only its assembly is rendered and billed; take 8 is new.
            (exitCode, stdout, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "iterate", takes[2].Id.ToString(), "--local", output, "--vary", "seed=2,7", "--vary", "guidance=9"], timeout: TimeSpan.FromMinutes(4));
            Assert.True(exitCode == 0, $"{stdout}\n{stderr}");
            db.ChangeTracker.Clear();
            var iteration = await db.Shots.AsNoTracking().Where(s => s.TakeNumber > 6).OrderBy(s => s.TakeNumber).ToListAsync();
            Assert.Equal([(7, 2L), (8, 7L)], iteration.Select(t => (t.TakeNumber, t.Seed)));
            Assert.All(iteration, t => Assert.Equal(ShotState.Succeeded, t.State));
            var iterationTasks = await db.Tasks.AsNoTracking().Where(t => t.JobId == iteration[0].JobId).ToListAsync();
            Assert.Equal(["assemble"], iterationTasks.Where(t => t.ShotId == iteration[0].Id).Select(t => t.Kind));
            Assert.Equal(8, iterationTasks.Count(t => t.ShotId == iteration[1].Id));
            Assert.Equal(7, await db.TaskReuses.CountAsync(r => r.ShotId == iteration[0].Id));
            Assert.Equal(9, await db.Usage.CountAsync(u => u.JobId == iteration[0].JobId));
            for (var frame = 0; frame < 12; frame++)
            {
                Assert.Equal(Frame(output, takes[2].Folder, frame), Frame(output, iteration[0].Folder, frame));
            }

            Assert.NotEqual(Frame(output, takes[2].Folder, 4), Frame(output, iteration[1].Folder, 4));
            Assert.Equal(12, (await FfprobeResult.ProbeAsync(Path.Combine(output, iteration[0].VideoPath!))).Frames);
            using (var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, iteration[0].ManifestPath!))))
            {
                var reused = manifest.RootElement.GetProperty("reused").EnumerateArray().ToList();
                Assert.Equal(7, reused.Count);
                Assert.All(reused, r => Assert.Equal(3, r.GetProperty("fromTakeNumber").GetInt32()));
                Assert.Equal(takes[2].Id.ToString(), manifest.RootElement.GetProperty("take").GetProperty("parentTake").GetString());
            }

            // A mistyped folder is refused before anything is created there.
            var nowhere = Path.Combine(folder, "nowhere");
            (exitCode, _, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "iterate", takes[2].Id.ToString(), "--local", nowhere, "--vary", "seed=9"], timeout: TimeSpan.FromMinutes(4));
            Assert.True(exitCode == 4, stderr);
            Assert.Contains("holds no local renders", stderr, StringComparison.Ordinal);
            Assert.False(Directory.Exists(nowhere));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
