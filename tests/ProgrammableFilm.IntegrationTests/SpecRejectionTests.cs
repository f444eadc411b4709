using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The coordinator and API alone, without workers.</summary>
public sealed class CoordinatorOnlyFixture : FarmFixture
{
    protected override int WorkerCount => 0;
}

public class SpecRejectionTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    private const string Valid = """
        {"project": "it-bad", "shots": [{"name": "s", "prompt": "a blue ball rising over the ocean", "duration": 3, "fps": 24,
          "width": 640, "height": 360, "engine": "procedural"}]}
        """;

    public static TheoryData<string, string, string, string> BadSpecs => new()
    {
        { "application/json", Valid.Replace("\"fps\": 24", "\"fps\": 0", StringComparison.Ordinal), "shots[0].fps", "from 1 to 120" },
        { "application/json", Valid.Replace("\"duration\": 3", "\"duration\": 600", StringComparison.Ordinal).Replace("\"fps\": 24", "\"fps\": 120", StringComparison.Ordinal), "shots[0].duration", "72000 frames" },
        { "application/json", Valid.Replace("\"width\": 640", "\"width\": 650", StringComparison.Ordinal), "shots[0].width", "multiple of 8" },
        { "application/json", Valid.Replace("\"engine\": \"procedural\"", "\"engine\": \"veo\"", StringComparison.Ordinal), "shots[0].engine", "not one of" },
        { "application/json", Valid.Replace("a blue ball rising over the ocean", "", StringComparison.Ordinal), "shots[0].prompt", "must not be empty" },
        { "application/json", Valid.Replace("\"fps\": 24", "\"fps\": 24, \"lens\": \"35mm\"", StringComparison.Ordinal), "shots[0].lens", "unknown field" },
        { "application/json", Valid[..40], "$", "malformed JSON" },
        { "application/yaml", "project: it-bad\nshots:\n  - name: [unclosed\n", "$", "malformed YAML" },
        { "application/yaml", "project: other-project\nshots:\n  - {name: s, prompt: p, duration: 1, fps: 1, width: 64, height: 64}\n", "project", "does not match" },
        { "application/json", TooManyTasks, "shots", "the job plans 1000100 tasks; a job holds at most 1000000" },
    };

    /// <summary>100 shots of 10,000 one-frame keyframes and an assembly each: every shot is valid, the job is 100 tasks too big.</summary>
    private static string TooManyTasks => $$"""
        {"project": "it-bad", "shots": [{{string.Join(", ", Enumerable.Range(0, 100).Select(i =>
            $$"""{"name": "s{{i}}", "prompt": "a red cube", "duration": 100, "fps": 100, "width": 64, "height": 64, "keyframeInterval": 1}"""))}}]}
        """;

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public async Task A_bad_spec_gets_problem_details_naming_the_field_and_rule_and_writes_nothing(string contentType, string body, string field, string rule)
    {
        using var content = new StringContent(body, Encoding.UTF8, contentType);
        using var response = await farm.Http.PostAsync("/api/projects/it-bad/jobs", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(400, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Equal("The job spec is invalid", problem.RootElement.GetProperty("title").GetString());
        var messages = problem.RootElement.GetProperty("errors").GetProperty(field).EnumerateArray().Select(m => m.GetString()!).ToList();
        Assert.Contains(messages, m => m.Contains(rule, StringComparison.Ordinal));

        await using var db = farm.CreateDbContext();
        Assert.Equal(0, await db.Jobs.CountAsync());
        Assert.Equal(0, await db.Shots.CountAsync());
        Assert.Equal(0, await db.Tasks.CountAsync());
    }

    [Fact]
    public async Task An_unknown_job_is_a_404_problem()
    {
        using var response = await farm.Http.GetAsync($"/api/jobs/{Guid.NewGuid()}");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
    }
}
