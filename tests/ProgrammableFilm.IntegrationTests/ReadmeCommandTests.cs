using System.Text.Json;
using System.Text.RegularExpressions;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The README's first command, run as a user runs it: <c>./pfilm render examples/racing-at-dusk.yaml</c>.</summary>
public class ReadmeCommandTests
{
    [Fact]
    public async Task The_readme_render_command_renders_the_example_to_a_72_frame_mp4_with_manifest_and_cost()
    {
        var output = TestEnvironment.CreateTemporaryFolder("pfilm-readme");
        try
        {
            var (exitCode, stdout, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "render", "examples/racing-at-dusk.yaml", "--out", output], timeout: TimeSpan.FromMinutes(8));

            Assert.True(exitCode == 0, $"exit {exitCode}\n{stdout}\n{stderr}");
            var video = PrintedPath(stdout, "MP4");
            var manifest = PrintedPath(stdout, "manifest");
            var costSummary = PrintedPath(stdout, "Cost summary");
            var probe = await FfprobeResult.ProbeAsync(video);
            Assert.Equal(("h264", 640, 360, 72, 24.0), (probe.Codec, probe.Width, probe.Height, probe.Frames, probe.FramesPerSecond));
            using var manifestJson = JsonDocument.Parse(await File.ReadAllTextAsync(manifest));
            Assert.Equal(42, manifestJson.RootElement.GetProperty("shot").GetProperty("seed").GetInt64());
            using var cost = JsonDocument.Parse(await File.ReadAllTextAsync(costSummary));
            Assert.True(cost.RootElement.GetProperty("cost").GetDecimal() > 0);
            Assert.Equal(14, cost.RootElement.GetProperty("attempts").GetInt32());
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public async Task An_invalid_spec_is_one_line_on_stderr_and_exit_code_2_with_nothing_rendered()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-invalid");
        try
        {
            var spec = Path.Combine(folder, "bad.yaml");
            await File.WriteAllTextAsync(spec, (await File.ReadAllTextAsync(Path.Combine(TestEnvironment.RepositoryRoot, "examples", "racing-at-dusk.yaml"))).Replace("fps: 24", "fps: 0", StringComparison.Ordinal));

            var (exitCode, stdout, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "render", spec, "--out", Path.Combine(folder, "out")], timeout: TimeSpan.FromMinutes(8));

            Assert.Equal(2, exitCode);
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("is invalid", StringComparison.Ordinal));
            Assert.StartsWith("pfilm: ", line, StringComparison.Ordinal);
            Assert.Contains("shots[0].fps", line, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
            Assert.False(Directory.Exists(Path.Combine(folder, "out")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static string PrintedPath(string stdout, string label)
    {
        var match = Regex.Match(stdout, $@"^\s*{Regex.Escape(label)}:\s+(\S+)\s*$", RegexOptions.Multiline);
        Assert.True(match.Success, $"'{label}:' not printed:\n{stdout}");
        Assert.True(File.Exists(match.Groups[1].Value), $"{match.Groups[1].Value} does not exist");
        return match.Groups[1].Value;
    }
}
