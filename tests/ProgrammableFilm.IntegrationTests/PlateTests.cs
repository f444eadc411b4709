using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Plates;
using ProgrammableFilm.Domain.Access;
using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Imaging;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>A farm whose plate limit is small enough to exceed in a test.</summary>
public sealed class PlateFarmFixture : FarmFixture
{
    public const int PlateMaxBytes = 200_000;

    protected override int WorkerCount => 1;

    protected override IReadOnlyDictionary<string, string> ExtraSettings => new Dictionary<string, string> { ["Coordinator:PlateMaxBytes"] = $"{PlateMaxBytes}" };
}

/// <summary>Camera plates on the farm (PostgreSQL, RabbitMQ, a worker process, the diffusion engine, real ffmpeg).</summary>
public class PlateTests(PlateFarmFixture farm) : IClassFixture<PlateFarmFixture>
{
    private const string Project = "it-plates";

    [Fact]
    public async Task An_uploaded_plate_starts_the_shots_keyframes_and_the_manifest_records_its_hash_and_uploader()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-plate");
        try
        {
            var mp4 = await PlateImages.LayoutVideoAsync(folder);
            using var upload = await farm.Http.PostAsync($"/api/projects/{Project}/plates", PlateImages.Form(("plate.mp4", await File.ReadAllBytesAsync(mp4))));
            Assert.True(upload.StatusCode == HttpStatusCode.Created, await upload.Content.ReadAsStringAsync());
            var plate = (await upload.Content.ReadFromJsonAsync<PlateInfo>(SpecJson.Options))!;
            Assert.Equal((8, 64, 64, "video/mp4"), (plate.FrameCount, plate.Width, plate.Height, plate.MediaType));
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(mp4))), plate.Sha256);

            // A plate of another size than the shot's is refused before anything is written.
            using (var mismatched = await farm.Http.PostAsync($"/api/projects/{Project}/jobs", new StringContent(Spec(plate.Id, 0.3, width: 128), Encoding.UTF8, "application/yaml")))
            {
                Assert.Equal(HttpStatusCode.BadRequest, mismatched.StatusCode);
                var problem = JsonDocument.Parse(await mismatched.Content.ReadAsStringAsync()).RootElement;
                Assert.True(problem.GetProperty("errors").TryGetProperty("shots[0].plate.id", out _), problem.ToString());
                await using var db = farm.CreateDbContext();
                Assert.False(await db.Jobs.AnyAsync(j => j.Project == Project));
            }

            using var response = await farm.Http.PostAsync($"/api/projects/{Project}/jobs", new StringContent(Spec(plate.Id, 0.3), Encoding.UTF8, "application/yaml"));
            Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());

            // A shot still to render starts from the plate: it cannot be deleted, and nothing is deleted.
            using (var inUse = await farm.Http.DeleteAsync($"/api/projects/{Project}/plates/{plate.Id}"))
            {
                Assert.True(inUse.StatusCode == HttpStatusCode.Conflict, await inUse.Content.ReadAsStringAsync());
                Assert.Contains("plated", await inUse.Content.ReadAsStringAsync(), StringComparison.Ordinal);
                Assert.True(File.Exists(Path.Combine(farm.StorageRoot, "plates", plate.Id.ToString("N"), "00000.png")));
            }

            var status = await FarmChecks.WaitForJobAsync(farm.Http, (await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options))!.Id, "Succeeded", TimeSpan.FromMinutes(5), () => farm.WorkerOutput);

            var shot = Assert.Single(status.Shots);
            var frames = Path.Combine(farm.StorageRoot, Path.GetDirectoryName(shot.Video!)!, "frames");
            foreach (var keyframe in new[] { 0, 4, 7 })
            {
                var layout = PlateImages.LayoutCorrelation(PlateImages.Read(Path.Combine(farm.StorageRoot, "plates", plate.Id.ToString("N"), $"{keyframe:D5}.png")), PlateImages.Read(Path.Combine(frames, $"{keyframe:D5}.png")));
                Assert.True(layout > 0.9, $"keyframe {keyframe}: layout correlation with the plate {layout:F3}");
            }

            using var manifest = JsonDocument.Parse(await farm.Http.GetStringAsync($"/api/shots/{shot.Id}/manifest"));
            var recorded = manifest.RootElement.GetProperty("plate");
            Assert.Equal(plate.Sha256, recorded.GetProperty("sha256").GetString());
            Assert.Equal(plate.UploadedBy, recorded.GetProperty("uploadedBy").GetString());
            Assert.Equal(0.3, recorded.GetProperty("strength").GetDouble());
            Assert.Equal("http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia", manifest.RootElement.GetProperty("marking").GetProperty("digitalSourceType").GetString());
            Assert.StartsWith("Partly AI-generated", manifest.RootElement.GetProperty("disclosure").GetString(), StringComparison.Ordinal);
            var (_, tags, _) = await TestEnvironment.RunAsync("ffprobe", ["-v", "error", "-show_entries", "format_tags=digital_source_type", "-of", "default=nw=1:nk=1", Path.Combine(farm.StorageRoot, shot.Video!)]);
            Assert.Equal("http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia", tags.Trim());

            // Once rendered, a producer deletes the footage: the frames go, the provenance stays, specs naming it are refused.
            var submitter = farm.Api.CreateClient().WithKey(await TestKeys.CreateAsync(farm.ConnectionString, Project, ApiKeyRole.Submitter));
            using (var refused = await submitter.DeleteAsync($"/api/projects/{Project}/plates/{plate.Id}"))
            {
                Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            }

            foreach (var _ in new[] { "delete", "delete again" })
            {
                using var deleted = await farm.Http.DeleteAsync($"/api/projects/{Project}/plates/{plate.Id}");
                Assert.True(deleted.StatusCode == HttpStatusCode.NoContent, await deleted.Content.ReadAsStringAsync());
            }

            Assert.False(Directory.Exists(Path.Combine(farm.StorageRoot, "plates", plate.Id.ToString("N"))));
            Assert.NotNull((await farm.Http.GetFromJsonAsync<PlateInfo>($"/api/projects/{Project}/plates/{plate.Id}", SpecJson.Options))!.DeletedAt);
            using (var after = JsonDocument.Parse(await farm.Http.GetStringAsync($"/api/shots/{shot.Id}/manifest")))
            {
                Assert.Equal(plate.Sha256, after.RootElement.GetProperty("plate").GetProperty("sha256").GetString());
            }

            using var again = await farm.Http.PostAsync($"/api/projects/{Project}/jobs", new StringContent(Spec(plate.Id, 0.3), Encoding.UTF8, "application/yaml"));
            Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
            Assert.Contains("was deleted", JsonDocument.Parse(await again.Content.ReadAsStringAsync()).RootElement.GetProperty("errors").GetProperty("shots[0].plate.id")[0].GetString(), StringComparison.Ordinal);
            using var unknown = await farm.Http.DeleteAsync($"/api/projects/{Project}/plates/{Guid.NewGuid()}");
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_plate_that_is_not_an_image_or_video_is_over_the_limit_or_mixes_sizes_is_a_400_naming_the_file_and_leaves_nothing()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-plate-bad");
        try
        {
            var small = await PlateImages.StillAsync(folder, "small.png", 32, 32);
            var large = await PlateImages.StillAsync(folder, "large.png", 64, 64);
            var oversized = new byte[PlateFarmFixture.PlateMaxBytes + 1];
            "\x89PNG\r\n\x1a\n"u8.ToArray().CopyTo(oversized, 0);
            var cases = new (string Field, string Says, (string Name, byte[] Bytes)[] Files)[]
            {
                ("file[0]", "is not a PNG or JPEG image or an MP4 video", [("notes.png", Encoding.UTF8.GetBytes("a shot list, not a picture"))]),
                ("file[0]", $"over the limit of {PlateFarmFixture.PlateMaxBytes} bytes", [("huge.png", oversized)]),
                ("file[1]", "is 32x32; the plate's first frame is 64x64", [("a.png", await File.ReadAllBytesAsync(large)), ("b.png", await File.ReadAllBytesAsync(small))]),
            };
            foreach (var (field, says, files) in cases)
            {
                using var response = await farm.Http.PostAsync($"/api/projects/{Project}/plates", PlateImages.Form(files));
                Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                var errors = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("errors");
                Assert.True(errors.TryGetProperty(field, out var messages), errors.ToString());
                Assert.Contains(says, messages[0].GetString(), StringComparison.Ordinal);
            }

            await using var db = farm.CreateDbContext();
            Assert.False(await db.Plates.AnyAsync(p => p.Project == Project && p.FileNames != "plate.mp4"));
            var left = Directory.Exists(Path.Combine(farm.StorageRoot, "plates")) ? Directory.GetFileSystemEntries(Path.Combine(farm.StorageRoot, "plates")) : [];
            var known = await db.Plates.Select(p => p.Id).ToListAsync();
            Assert.All(left, entry => Assert.Contains(known, id => Path.GetFileName(entry) == id.ToString("N")));
            var audit = await farm.Http.GetFromJsonAsync<JsonElement>($"/api/projects/{Project}/audit");
            Assert.Equal(["invalid: file[1]", "invalid: file[0]", "invalid: file[0]"], audit.GetProperty("entries").EnumerateArray()
                .Where(e => e.GetProperty("action").GetString() == "plate.upload" && e.GetProperty("outcome").GetString()!.StartsWith("invalid", StringComparison.Ordinal)).Select(e => e.GetProperty("outcome").GetString()));

            // The same frames in order, each one size: an image sequence is a plate of that many frames.
            using var sequence = await farm.Http.PostAsync($"/api/projects/{Project}/plates", PlateImages.Form(("a.png", await File.ReadAllBytesAsync(large)), ("b.png", await File.ReadAllBytesAsync(large))));
            Assert.True(sequence.StatusCode == HttpStatusCode.Created, await sequence.Content.ReadAsStringAsync());
            var plate = (await sequence.Content.ReadFromJsonAsync<PlateInfo>(SpecJson.Options))!;
            Assert.Equal((2, 64, 64, "image/png"), (plate.FrameCount, plate.Width, plate.Height, plate.MediaType));
            Assert.Equal(2, Directory.GetFiles(Path.Combine(farm.StorageRoot, "plates", plate.Id.ToString("N")), "*.png").Length);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static string Spec(Guid plate, double strength, int width = 64) => $"""
        project: {Project}
        shots:
          - name: plated
            prompt: a red ball bouncing left to right on a green field
            duration: 1
            fps: 8
            width: {width}
            height: 64
            steps: 8
            seed: 7
            engine: diffusion
            keyframeInterval: 4
            plate:
              id: {plate}
              strength: {strength.ToString(System.Globalization.CultureInfo.InvariantCulture)}
        """;
}

/// <summary>Plates made with ffmpeg for tests, and the layout measure.</summary>
internal static class PlateImages
{
    /// <summary>
    /// A plate with a layout unlike anything the model draws: a white bar down the left, a blue square at the bottom
    /// right, on black; 64×64, 8 frames at 8 fps.
    /// </summary>
    public static async Task<string> LayoutVideoAsync(string folder)
    {
        var path = Path.Combine(folder, "plate.mp4");
        var (exitCode, _, error) = await TestEnvironment.RunAsync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=black:size=64x64:rate=8:duration=1",
            "-vf", "drawbox=x=0:y=0:w=24:h=64:color=white:t=fill,drawbox=x=40:y=40:w=24:h=24:color=0x2060ff:t=fill", "-pix_fmt", "yuv420p", "-c:v", "libx264", path]);
        Assert.True(exitCode == 0, error);
        return path;
    }

    public static async Task<string> StillAsync(string folder, string name, int width, int height)
    {
        var path = Path.Combine(folder, name);
        var (exitCode, _, error) = await TestEnvironment.RunAsync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", $"color=c=gray:size={width}x{height}", "-frames:v", "1", path]);
        Assert.True(exitCode == 0, error);
        return path;
    }

    public static MultipartFormDataContent Form(params (string Name, byte[] Bytes)[] files)
    {
        var form = new MultipartFormDataContent();
        foreach (var (name, bytes) in files)
        {
            var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(content, "file", name);
        }

        return form;
    }

    public static RgbImage Read(string path)
    {
        using var stream = File.OpenRead(path);
        return Png.Read(stream);
    }

    /// <summary>
    /// Pearson correlation of the two images' luminance (same size): near 1 when bright and dark regions sit in the
    /// same places (the layout is kept, whatever the colours), near 0 when they are unrelated.
    /// </summary>
    public static double LayoutCorrelation(RgbImage a, RgbImage b)
    {
        Assert.Equal((a.Width, a.Height), (b.Width, b.Height));
        var x = Luminance(a);
        var y = Luminance(b);
        var (mx, my) = (x.Average(), y.Average());
        double sxy = 0, sxx = 0, syy = 0;
        for (var i = 0; i < x.Length; i++)
        {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }

        return sxy / Math.Sqrt(sxx * syy);
    }

    private static double[] Luminance(RgbImage image) =>
        [.. Enumerable.Range(0, image.Width * image.Height).Select(p => (image.Pixels[3 * p] + image.Pixels[(3 * p) + 1] + image.Pixels[(3 * p) + 2]) / 3.0)];
}
