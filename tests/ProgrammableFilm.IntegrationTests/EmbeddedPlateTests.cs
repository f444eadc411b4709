using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.IntegrationTests;

/// <summary><c>plate: {path}</c> rendered with <c>pfilm render</c> (SQLite, in-process worker, the diffusion engine).</summary>
public class EmbeddedPlateTests
{
    [Fact]
    public async Task A_plate_at_strength_0_3_keeps_its_layout_and_at_1_0_is_ignored()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-plate-local");
        try
        {
            await PlateImages.LayoutVideoAsync(folder);
            var spec = Path.Combine(folder, "plated.yaml");
            await File.WriteAllTextAsync(spec, """
                project: it-local-plates
                shots:
                  - name: kept
                    prompt: a red ball bouncing left to right on a green field
                    duration: 1
                    fps: 8
                    width: 64
                    height: 64
                    steps: 8
                    seed: 7
                    engine: diffusion
                    keyframeInterval: 4
                    plate:
                      path: plate.mp4
                      strength: 0.3
                  - name: ignored
                    prompt: a red ball bouncing left to right on a green field
                    duration: 1
                    fps: 8
                    width: 64
                    height: 64
                    steps: 8
                    seed: 7
                    engine: diffusion
                    keyframeInterval: 4
                    plate:
                      path: plate.mp4
                      strength: 1.0
                  - name: released
                    prompt: a red ball bouncing left to right on a green field
                    duration: 1
                    fps: 8
                    width: 64
                    height: 64
                    steps: 8
                    seed: 7
                    engine: diffusion
                    keyframeInterval: 4
                    plate:
                      path: plate.mp4
                      strength: [0.3, 0.3, 1.0]
                """);
            var output = Path.Combine(folder, "renders");
            var (exitCode, stdout, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "render", spec, "--out", output], timeout: TimeSpan.FromMinutes(8));
            Assert.True(exitCode == 0, $"{stdout}\n{stderr}");

            await using var db = new FarmDbContext(new DbContextOptionsBuilder<FarmDbContext>().UseSqlite($"Data Source={Path.Combine(output, "pfilm.db")}").Options);
            var shots = await db.Shots.AsNoTracking().ToDictionaryAsync(s => s.Name);
            var plates = await db.Plates.AsNoTracking().ToListAsync();
            Assert.Equal(3, plates.Count); // each shot's path is ingested; the same bytes, the same hash
            Assert.Single(plates.Select(p => p.Sha256).Distinct());
            Assert.All(plates, p => Assert.StartsWith("local:", p.UploadedBy, StringComparison.Ordinal));
            foreach (var keyframe in new[] { 0, 4, 7 })
            {
                var plate = PlateImages.Read(Path.Combine(output, plates[0].Folder, $"{keyframe:D5}.png"));
                var kept = PlateImages.LayoutCorrelation(plate, PlateImages.Read(Path.Combine(output, shots["kept"].Folder, "frames", $"{keyframe:D5}.png")));
                var ignored = PlateImages.LayoutCorrelation(plate, PlateImages.Read(Path.Combine(output, shots["ignored"].Folder, "frames", $"{keyframe:D5}.png")));
                Assert.True(kept > 0.9, $"keyframe {keyframe}: strength 0.3 correlates {kept:F3} with the plate");
                Assert.True(Math.Abs(ignored) < 0.4, $"keyframe {keyframe}: strength 1.0 correlates {ignored:F3} with the plate");

                // A strength per keyframe: the first two keep the plate, the last (frame 7) lets it go.
                var released = PlateImages.LayoutCorrelation(plate, PlateImages.Read(Path.Combine(output, shots["released"].Folder, "frames", $"{keyframe:D5}.png")));
                Assert.True(keyframe < 7 ? released > 0.9 : Math.Abs(released) < 0.4, $"keyframe {keyframe}: the scheduled strength correlates {released:F3} with the plate");
            }

            using var manifest = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, shots["released"].ManifestPath!)));
            Assert.Equal([0.3, 0.3, 1.0], manifest.RootElement.GetProperty("plate").GetProperty("strengthPerKeyframe").EnumerateArray().Select(s => s.GetDouble()));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_bad_plate_path_exits_2_with_one_line_naming_the_field_and_leaves_no_plate_behind()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-plate-local-bad");
        try
        {
            await PlateImages.LayoutVideoAsync(folder);
            await PlateImages.StillAsync(folder, "small.png", 32, 32);
            await File.WriteAllTextAsync(Path.Combine(folder, "notes.png"), "a shot list, not a picture");
            static string Shot(string name, string path) => $$$"""
                  - {name: {{{name}}}, prompt: a red ball, duration: 1, fps: 8, width: 64, height: 64, steps: 4, engine: diffusion, plate: {path: {{{path}}}, strength: 0.3}}

                """;

            // The second shot's plate is refused after the first's was ingested; the third spec is refused by the
            // submission (the plate is not the shot's size) after its plate was ingested: neither may leave one.
            foreach (var (shots, field, says) in new[]
            {
                (Shot("a", "notes.png"), "shots[0].plate.path", "is not a PNG or JPEG image or an MP4 video"),
                (Shot("a", "plate.mp4") + Shot("b", "notes.png"), "shots[1].plate.path", "is not a PNG or JPEG image or an MP4 video"),
                (Shot("a", "small.png"), "shots[0].plate.path", "the plate is 32x32; the shot is 64x64"),
            })
            {
                var spec = Path.Combine(folder, "bad.yaml");
                await File.WriteAllTextAsync(spec, "project: it-local-plates\nshots:\n" + shots);
                var output = Path.Combine(folder, "renders");
                var (exitCode, stdout, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "render", spec, "--out", output], timeout: TimeSpan.FromMinutes(4));

                Assert.True(exitCode == 2, $"exit {exitCode}\n{stdout}\n{stderr}");
                // The ./pfilm script may say it is building the CLI first; the CLI's own answer is one line.
                var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("pfilm: bad.yaml", StringComparison.Ordinal));
                Assert.StartsWith($"pfilm: bad.yaml is invalid: {field}: ", line, StringComparison.Ordinal);
                Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
                Assert.Contains(says, line, StringComparison.Ordinal);
                await using var db = new FarmDbContext(new DbContextOptionsBuilder<FarmDbContext>().UseSqlite($"Data Source={Path.Combine(output, "pfilm.db")}").Options);
                Assert.Empty(await db.Plates.AsNoTracking().ToListAsync());
                Assert.Empty(await db.Jobs.AsNoTracking().ToListAsync());
                var plates = Path.Combine(output, "plates");
                Assert.Empty(Directory.Exists(plates) ? Directory.GetFileSystemEntries(plates) : []);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
