using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// Input written to break the API or the CLI: every request gets a 4xx with problem details (never a 500), nothing
/// reaches the jobs table, and the process keeps answering.
/// </summary>
public class HostileInputTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    private const string Valid = """
        {"project": "it-hostile", "shots": [{"name": "s", "prompt": "a blue ball rising over the ocean", "duration": 1, "fps": 4,
          "width": 64, "height": 64}]}
        """;

    // Rejected for fps 0 whatever the content type says, so no header case can create a job.
    private const string Invalid = """{"project": "it-hostile", "shots": [{"name": "s", "prompt": "p", "duration": 1, "fps": 0, "width": 64, "height": 64}]}""";

    private const string BillionLaughs = """
        l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]
        l1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]
        l2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]
        l3: &l3 [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]
        l4: &l4 [*l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3]
        l5: &l5 [*l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4]
        l6: &l6 [*l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5]
        l7: &l7 [*l6, *l6, *l6, *l6, *l6, *l6, *l6, *l6, *l6]
        l8: &l8 [*l7, *l7, *l7, *l7, *l7, *l7, *l7, *l7, *l7]
        project: it-hostile
        shots: *l8
        """;

    /// <summary>Hostile bodies by name: content type, bytes, and the field the error must name (null: any).</summary>
    private static readonly Dictionary<string, (string? ContentType, byte[] Body, string? Field)> Bodies = new(StringComparer.Ordinal)
    {
        ["nul-escaped-json"] = ("application/json", Utf8(Valid.Replace("a blue ball", "a blue\\u0000ball", StringComparison.Ordinal)), "shots[0].prompt"),
        ["nul-raw-json"] = ("application/json", Utf8(Valid.Replace("a blue ball", "a blue\0ball", StringComparison.Ordinal)), "$"),
        ["nul-escaped-yaml"] = ("application/yaml", Utf8("project: it-hostile\nshots:\n  - {name: s, prompt: \"a\\0b\", duration: 1, fps: 4, width: 64, height: 64}\n"), "shots[0].prompt"),
        ["nul-raw-yaml"] = ("application/yaml", Utf8("project: it-hostile\nshots:\n  - {name: s, prompt: a\0b, duration: 1, fps: 4, width: 64, height: 64}\n"), "$"),
        ["nul-in-unknown-key"] = ("application/json", Utf8(Valid.Replace("\"fps\"", "\"f\\u0000ps\": 1, \"fps\"", StringComparison.Ordinal)), "shots[0].f\\u0000ps"),
        ["control-character-in-name"] = ("application/json", Utf8(Valid.Replace("\"name\": \"s\"", "\"name\": \"s\\u001b[2J\"", StringComparison.Ordinal)), "shots[0].name"),
        ["unpaired-surrogate-escape"] = ("application/json", Utf8(Valid.Replace("a blue ball", "a blue\\ud800ball", StringComparison.Ordinal)), "shots[0].prompt"),
        ["unpaired-surrogate-key"] = ("application/json", Utf8(Valid.Replace("\"fps\"", "\"\\udc00\": 1, \"fps\"", StringComparison.Ordinal)), "shots[0].\\uDC00"),
        ["self-alias-yaml"] = ("application/yaml", Utf8("project: it-hostile\nshots: &x [*x]\n"), "$"),
        ["alias-bomb-yaml"] = ("application/yaml", Utf8(BillionLaughs), "$"),
        ["deep-json"] = ("application/json", Utf8(new string('[', 10_000) + new string(']', 10_000)), "$"),
        ["deep-yaml"] = ("application/yaml", Utf8(string.Concat(Enumerable.Repeat("- ", 10_000)) + "x"), "$"),
        ["deep-json-in-a-field"] = ("application/json", Utf8(Valid.Replace("\"fps\": 4", "\"fps\": " + new string('[', 10_000) + new string(']', 10_000), StringComparison.Ordinal)), "$"),
        ["random-bytes-json"] = ("application/json", RandomBytes(4096), "$"),
        ["random-bytes-yaml"] = ("application/yaml", RandomBytes(4096), null),
        ["invalid-utf8"] = ("application/json", [.. Utf8("{\"project\": \"it-hostile\", \"name\": \""), 0xC3, 0x28, 0xED, 0xA0, 0x80, 0xFF, .. Utf8("\", \"shots\": []}")], "shots"),
        ["empty-json"] = ("application/json", [], "$"),
        ["empty-yaml"] = ("application/yaml", [], "$"),
        ["no-content-type"] = (null, Utf8("project: it-hostile\n"), "$"),
        ["two-megabytes"] = ("application/json", Utf8(Valid.Replace("a blue ball", new string('a', 2 << 20), StringComparison.Ordinal)), "$"),
        ["json-array"] = ("application/json", Utf8("[1, 2, 3]"), "$"),
        ["json-number"] = ("application/json", Utf8("42"), "$"),
        ["json-string"] = ("application/json", Utf8("\"a spec\""), "$"),
        ["json-null"] = ("application/json", Utf8("null"), "$"),
        ["yaml-two-documents"] = ("application/yaml", Utf8("project: it-hostile\n---\nproject: it-hostile\n"), "$"),
        ["bad-retries-and-after"] = ("application/json", Utf8(Valid.Replace("\"shots\"", "\"retries\": 99, \"after\": [\"00000000-0000-0000-0000-00000000000g\"], \"shots\"", StringComparison.Ordinal)), "after[0]"),
    };

    public static TheoryData<string> BodyNames => [.. Bodies.Keys];

    [Theory]
    [MemberData(nameof(BodyNames))]
    public async Task A_hostile_body_is_a_400_problem_and_writes_nothing(string name)
    {
        var (contentType, body, field) = Bodies[name];
        using var content = new ByteArrayContent(body);
        if (contentType is not null)
        {
            content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        }

        using var response = await farm.Http.PostAsync("/api/projects/it-hostile/jobs", content);

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        if (field is not null)
        {
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"no error for {field}: {problem}");
        }

        await AssertAliveAndNothingWrittenAsync();
    }

    [Fact]
    public async Task A_two_megabyte_body_without_a_length_is_a_400_problem()
    {
        using var content = new UnknownLengthContent(Utf8(Valid.Replace("a blue ball", new string('a', 2 << 20), StringComparison.Ordinal)));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        using var response = await farm.Http.PostAsync("/api/projects/it-hostile/jobs", content);

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("larger than", problem.GetProperty("errors").GetProperty("$")[0].GetString(), StringComparison.Ordinal);
        await AssertAliveAndNothingWrittenAsync();
    }

    [Theory]
    [InlineData("application/yaml; charset=nonsense")]
    [InlineData("application/json; charset=utf-16")]
    [InlineData("text/plain")]
    [InlineData("multipart/form-data; boundary=")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData(";;;")]
    [InlineData("yaml/yaml/yaml")]
    [InlineData("\u00ff\u00fe")]
    [InlineData("")]
    public async Task A_garbage_content_type_is_a_400_problem(string contentType)
    {
        using var content = new ByteArrayContent(Utf8(Invalid));
        Assert.True(content.Headers.TryAddWithoutValidation("Content-Type", contentType));

        using var response = await farm.Http.PostAsync("/api/projects/it-hostile/jobs", content);

        await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        await AssertAliveAndNothingWrittenAsync();
    }

    [Theory]
    [InlineData("%2E%2E")]
    [InlineData("caf%C3%A9")]
    [InlineData("%F0%9F%8E%AC")]
    [InlineData("%ED%A0%80")]
    [InlineData("%FF%FE")]
    [InlineData("%1B%5B2J")]
    [InlineData("IT-HOSTILE")]
    public async Task A_hostile_project_in_the_path_is_a_4xx_problem(string project)
    {
        await AssertProjectRefusedAsync(project);
    }

    [Fact]
    public async Task A_300_character_project_in_the_path_is_a_4xx_problem()
    {
        await AssertProjectRefusedAsync(new string('p', 300));
    }

    [Theory]
    [InlineData("/api/jobs/not-a-guid")]
    [InlineData("/api/jobs/00000000-0000-0000-0000-000000000000")]
    [InlineData("/api/jobs/00000000-0000-0000-0000-000000000000/cost")]
    [InlineData("/api/jobs/not-a-guid/cost")]
    [InlineData("/api/jobs/..%2F..%2Fetc%2Fpasswd")]
    [InlineData("/api/jobs/{00000000-0000-0000-0000-000000000000}")]
    [InlineData("/api/shots/00000000-0000-0000-0000-000000000000/video")]
    [InlineData("/api/shots/00000000-0000-0000-0000-000000000000/manifest")]
    [InlineData("/api/shots/not-a-guid/video")]
    [InlineData("/api/shots/00000000-0000-0000-0000-000000000000/frames/0")]
    [InlineData("/api/shots/00000000-0000-0000-0000-000000000000/frames/-1")]
    [InlineData("/api/shots/00000000-0000-0000-0000-000000000000/frames/2147483647")]
    [InlineData("/api/shots/00000000-0000-0000-0000-000000000000/frames/-2147483648")]
    [InlineData("/api/shots/00000000-0000-0000-0000-000000000000/frames/99999999999999999999")]
    [InlineData("/api/shots/00000000-0000-0000-0000-000000000000/frames/1e3")]
    public async Task A_hostile_id_or_frame_in_the_path_is_a_4xx_problem(string path)
    {
        using var response = await farm.Http.GetAsync(path);

        await AssertProblemAsync(response, HttpStatusCode.NotFound);
        await AssertAliveAndNothingWrittenAsync();
    }

    [Theory]
    [InlineData("POST", "/api/jobs/00000000-0000-0000-0000-000000000000/cancel")]
    [InlineData("POST", "/api/jobs/00000000-0000-0000-0000-000000000000/pause")]
    [InlineData("POST", "/api/jobs/00000000-0000-0000-0000-000000000000/resume")]
    [InlineData("POST", "/api/jobs/00000000-0000-0000-0000-000000000000/retry")]
    [InlineData("POST", "/api/jobs/not-a-guid/retry")]
    [InlineData("POST", "/api/shots/00000000-0000-0000-0000-000000000000/cancel")]
    [InlineData("GET", "/api/jobs/00000000-0000-0000-0000-000000000000/logs")]
    [InlineData("GET", "/api/jobs/00000000-0000-0000-0000-000000000000/logs?task=%00&attempt=2147483647")]
    [InlineData("POST", "/api/farm/error-queues/no-such-queue_error/replay")]
    [InlineData("POST", "/api/farm/error-queues/%2E%2E/replay")]
    public async Task Job_control_logs_and_error_queues_answer_a_missing_resource_with_a_404_problem(string method, string path)
    {
        using var response = await farm.Http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        await AssertProblemAsync(response, HttpStatusCode.NotFound);
        await AssertAliveAndNothingWrittenAsync();
    }

    [Theory]
    [InlineData("/api/jobs/00000000-0000-0000-0000-000000000000/logs?attempt=abc")]
    [InlineData("/api/jobs/00000000-0000-0000-0000-000000000000/logs?attempt=99999999999999999999")]
    [InlineData("/api/projects/it-hostile/jobs?limit=abc")]
    [InlineData("/api/projects/it-hostile/jobs?limit=0")]
    [InlineData("/api/projects/it-hostile/jobs?limit=1&offset=-1")]
    [InlineData("/api/projects/it-hostile/jobs?offset=99999999999999999999")]
    public async Task Malformed_query_values_are_a_400_problem(string path)
    {
        using var response = await farm.Http.GetAsync(path);

        await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        await AssertAliveAndNothingWrittenAsync();
    }

    [Fact]
    public async Task A_nul_in_the_path_is_a_400_from_kestrel_before_the_app_sees_it()
    {
        // The test server refuses to build such a request at all, so this one goes through a real Kestrel listener.
        await using var kestrel = farm.Api.WithWebHostBuilder(_ => { });
        kestrel.UseKestrel(0);
        kestrel.StartServer();
        using var http = kestrel.CreateClient();

        foreach (var (method, path) in new[]
        {
            (HttpMethod.Post, "/api/projects/%00/jobs"),
            (HttpMethod.Post, "/api/projects/it-hostile%00/jobs"),
            (HttpMethod.Get, "/api/jobs/%00"),
            (HttpMethod.Get, "/api/jobs/00000000-0000-0000-0000-000000000000%00/cost"),
            (HttpMethod.Get, "/api/shots/00000000-0000-0000-0000-000000000000/frames/%00"),
        })
        {
            // No body: Kestrel answers and closes the connection before reading one, which would break the upload.
            using var request = new HttpRequestMessage(method, path);
            using var response = await http.SendAsync(request);

            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{method} {path}: {(int)response.StatusCode}");
        }

        using var health = await http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        await AssertAliveAndNothingWrittenAsync();
    }

    [Theory]
    [InlineData("render", "self-alias.yaml", "project: ci\nshots: &x [*x]\n")]
    [InlineData("render", "alias-bomb.yaml", BillionLaughs)]
    [InlineData("render", "deep.yaml", null)]
    [InlineData("render", "nul.yaml", "project: ci\nshots:\n  - {name: s, prompt: a\0b, duration: 1, fps: 4, width: 64, height: 64}\n")]
    [InlineData("submit", "self-alias.yaml", "project: ci\nshots: &x [*x]\n")]
    [InlineData("submit", "alias-bomb.yaml", BillionLaughs)]
    [InlineData("submit", "nul-escaped.yaml", "project: ci\nshots:\n  - {name: s, prompt: \"a\\0b\", duration: 1, fps: 4, width: 64, height: 64}\n")]
    [InlineData("submit", "surrogate.yaml", "project: ci\nshots:\n  - {name: s, prompt: \"a\\ud800b\", duration: 1, fps: 4, width: 64, height: 64}\n")]
    public async Task The_cli_refuses_a_hostile_spec_file_in_one_line_with_exit_code_2(string command, string file, string? text)
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-hostile");
        try
        {
            var spec = Path.Combine(folder, file);
            await File.WriteAllTextAsync(spec, text ?? new string('[', 10_000) + new string(']', 10_000));
            string[] target = command == "render" ? ["--out", Path.Combine(folder, "out")] : ["--server", "http://127.0.0.1:1"];

            var (exitCode, stdout, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", command, spec, .. target], timeout: TimeSpan.FromMinutes(8));

            Assert.True(exitCode == 2, $"exit {exitCode}\n{stdout}\n{stderr}");
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("is invalid", StringComparison.Ordinal));
            Assert.StartsWith($"pfilm: {file} is invalid: ", line, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
            Assert.DoesNotContain('\0', stderr);
            Assert.False(Directory.Exists(Path.Combine(folder, "out")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private async Task AssertProjectRefusedAsync(string project)
    {
        using var content = new StringContent(Valid, Encoding.UTF8, "application/json");

        using var response = await farm.Http.PostAsync($"/api/projects/{project}/jobs", content);

        Assert.InRange((int)response.StatusCode, 400, 499);
        await AssertProblemAsync(response, response.StatusCode);
        await AssertAliveAndNothingWrittenAsync();
    }

    private static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode} {response.ReasonPhrase}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(body);
        Assert.Equal((int)expected, problem.RootElement.GetProperty("status").GetInt32());
        return problem.RootElement.Clone();
    }

    private async Task AssertAliveAndNothingWrittenAsync()
    {
        using var health = await farm.Http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        await using var db = farm.CreateDbContext();
        Assert.Equal(0, await db.Jobs.CountAsync());
    }

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        new Random(15).NextBytes(bytes);
        return bytes;
    }

    /// <summary>A body sent without Content-Length (chunked), so the size check up front cannot see it.</summary>
    private sealed class UnknownLengthContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
