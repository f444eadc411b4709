using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ProgrammableFilm.IntegrationTests;

public class OpenApiTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    private const string Regenerate = "dotnet build src/ProgrammableFilm.Api -c Release -p:OpenApiDocumentsDirectory=$PWD/docs/openapi";

    [Fact]
    public async Task The_served_document_is_the_committed_one()
    {
        var served = JsonNode.Parse(await farm.Http.GetStringAsync("/openapi/v1.json"))!;
        var path = Path.Combine(TestEnvironment.RepositoryRoot, "docs", "openapi", "v1.json");
        var committed = JsonNode.Parse(await File.ReadAllTextAsync(path))!;

        Assert.True(
            JsonNode.DeepEquals(served, committed),
            $"The API served by this build differs from docs/openapi/v1.json (first difference at {FirstDifference(served, committed, "$")}). If the change is intended, regenerate the committed document from the repository root with:\n  {Regenerate}\nand commit it.");
    }

    [Fact]
    public async Task Every_operation_has_a_summary_a_success_response_and_problem_details_for_its_errors()
    {
        var document = JsonNode.Parse(await farm.Http.GetStringAsync("/openapi/v1.json"))!;
        var operations = document["paths"]!.AsObject()
            .SelectMany(path => path.Value!.AsObject().Select(op => (Name: $"{op.Key.ToUpperInvariant()} {path.Key}", Operation: op.Value!)))
            .ToList();

        Assert.True(operations.Count >= 20, $"only {operations.Count} operations");
        Assert.All(operations, op =>
        {
            Assert.False(string.IsNullOrWhiteSpace((string?)op.Operation["summary"]), $"{op.Name} has no summary");
            var responses = op.Operation["responses"]!.AsObject();
            Assert.Contains(responses, r => r.Key.StartsWith('2'));
            foreach (var error in responses.Where(r => r.Key.StartsWith('4')))
            {
                var content = error.Value!["content"]?.AsObject();
                Assert.True(content is not null && content.ContainsKey("application/problem+json"), $"{op.Name} answers {error.Key} without problem details");
            }

            if (op.Name.Contains('{', StringComparison.Ordinal) && !op.Name.Contains("/projects/{project}", StringComparison.Ordinal))
            {
                Assert.True(responses.ContainsKey("404"), $"{op.Name} names a resource but lists no 404");
            }
        });
    }

    [Fact]
    public async Task The_reference_page_and_its_script_are_served_here()
    {
        var html = await farm.Http.GetStringAsync("/api-docs");

        Assert.Contains("ProgrammableFilm API", html, StringComparison.Ordinal);
        Assert.DoesNotContain("cdn.jsdelivr.net", html, StringComparison.Ordinal);
        Assert.DoesNotContain("fonts.scalar.com", html, StringComparison.Ordinal);
    }

    private static string FirstDifference(JsonNode? a, JsonNode? b, string at)
    {
        if (a is JsonObject x && b is JsonObject y)
        {
            foreach (var key in x.Select(p => p.Key).Union(y.Select(p => p.Key)))
            {
                if (!JsonNode.DeepEquals(x[key], y[key]))
                {
                    return FirstDifference(x[key], y[key], $"{at}.{key}");
                }
            }
        }

        return at;
    }
}

public class DashboardApiTests(CoordinatorOnlyFixture farm) : IClassFixture<CoordinatorOnlyFixture>
{
    [Theory]
    [InlineData("/api/projects/p/spend/series?bucket=week", "bucket")]
    [InlineData("/api/projects/p/spend/series?from=yesterday", "from")]
    [InlineData("/api/projects/p/spend/series?from=2026-11-30T10:00:00Z&to=2026-11-30T09:00:00Z", "from")]
    [InlineData("/api/projects/p/spend/series?bucket=minute&from=2026-01-01T00:00:00Z&to=2026-11-30T00:00:00Z", "from")]
    [InlineData("/api/projects/p/jobs/progress?limit=0", "limit")]
    [InlineData("/api/shots/6f1c1c52-2f0e-4a8e-9d7c-1a2b3c4d5e6f/timeline?limit=100000", "limit")]
    public async Task Bad_queries_get_a_400_problem_naming_the_field(string url, string field)
    {
        using var response = await farm.Http.GetAsync(url);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
    }

    [Fact]
    public async Task An_unknown_shot_has_no_timeline()
    {
        using var response = await farm.Http.GetAsync($"/api/shots/{Guid.NewGuid()}/timeline");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
    }
}
