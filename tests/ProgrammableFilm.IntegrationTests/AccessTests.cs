using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A farm with two projects: <c>alpha</c> has a rendered job (so its video, manifest and frames exist) and keys of
/// every role; <c>beta</c> has a producer key, the strongest a project can hold.
/// </summary>
public sealed class AccessFarmFixture : FarmFixture, IAsyncLifetime
{
    public const string SecretName = "alpha-secret-job-name";
    public const string SecretPrompt = "a red car racing left to right at dusk over alphaconfidential";

    protected override int WorkerCount => 1;

    public Guid AlphaJob { get; private set; }

    public Guid AlphaShot { get; private set; }

    public Guid AlphaPlate { get; private set; }

    public Guid AlphaWebhook { get; private set; }

    public Dictionary<ApiKeyRole, string> Alpha { get; } = [];

    public string BetaProducer { get; private set; } = "";

    public static string Spec(string project) => $$"""
        project: {{project}}
        name: {{SecretName}}
        shots:
          - {name: s1, prompt: "{{SecretPrompt}}", duration: 0.5, fps: 8, width: 64, height: 64, keyframeInterval: 2}
        """;

    public new async Task InitializeAsync()
    {
        await base.InitializeAsync();
        foreach (var role in new[] { ApiKeyRole.Viewer, ApiKeyRole.Submitter, ApiKeyRole.Producer })
        {
            Alpha[role] = await TestKeys.CreateAsync(ConnectionString, "alpha", role);
        }

        BetaProducer = await TestKeys.CreateAsync(ConnectionString, "beta", ApiKeyRole.Producer);
        using (var overridePrice = await Http.PostAsJsonAsync("/api/prices/devices", new { sku = "cpu", dollarsPerHour = 0.05m, ratedWatts = 12, project = "alpha" }))
        {
            overridePrice.EnsureSuccessStatusCode();
        }

        AlphaJob = await FarmChecks.SubmitAsync(Http, "alpha", Spec("alpha"));
        var status = await FarmChecks.WaitForJobAsync(Http, AlphaJob, "Succeeded", TimeSpan.FromMinutes(2), () => WorkerOutput);
        AlphaShot = status.Shots[0].Id;
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-access-plate");
        try
        {
            var still = await PlateImages.StillAsync(folder, "still.png", 64, 64);
            using var upload = await Http.PostAsync("/api/projects/alpha/plates", PlateImages.Form(("still.png", await File.ReadAllBytesAsync(still))));
            upload.EnsureSuccessStatusCode();
            AlphaPlate = (await upload.Content.ReadFromJsonAsync<Coordinator.Plates.PlateInfo>(Coordinator.SpecJson.Options))!.Id;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }

        // A documentation address (TEST-NET-3): allowed by the default policy, resolves without DNS, never answers.
        using var hook = await Http.PostAsJsonAsync("/api/projects/alpha/webhooks", new { url = "https://203.0.113.10/alpha-hook", events = new[] { "job.failed" } });
        hook.EnsureSuccessStatusCode();
        AlphaWebhook = (await hook.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    public HttpClient Client(string? key)
    {
        var http = Api.CreateClient();
        return key is null ? http : http.WithKey(key);
    }
}

[CollectionDefinition(nameof(AccessFarmCollection))]
public sealed class AccessFarmCollection : ICollectionFixture<AccessFarmFixture>;

[Collection(nameof(AccessFarmCollection))]
public class AccessTests(AccessFarmFixture farm)
{
    /// <summary>Endpoints anyone who can reach the port may call, each with the reason; everything else needs a key.</summary>
    private static readonly Dictionary<string, string> OpenEndpoints = new(StringComparer.Ordinal)
    {
        ["* /health/live"] = "the kubelet's liveness probe sends no key; says only that the process answers",
        ["* /health/ready"] = "the readiness probe sends no key; says which dependency is down, nothing of any project",
        ["GET /healthz"] = "the README's and the tests' plain liveness check",
        ["* /metrics"] = "Prometheus scrapes from inside the cluster without a key (limit it with a network policy)",
        ["GET /openapi/{documentName}.json"] = "the API's description is public, like the source",
    };

    /// <summary>Endpoints with no project in the route that answer with the caller's own things only.</summary>
    private static readonly HashSet<string> CallerScoped = new(StringComparer.Ordinal)
    {
        "GET /api/projects",
        // The farm's prices are every project's business; alpha's override (set by the fixture) is alpha's alone.
        "GET /api/prices",
    };

    /// <summary>Endpoints outside the OpenAPI document that need a key, each with the test that checks them.</summary>
    private static readonly Dictionary<string, string> UndocumentedChecked = new(StringComparer.Ordinal)
    {
        ["* /hubs/farm"] = "SignalR hub: The_live_hub_needs_a_key_and_admits_a_project_key_to_its_own_project_only",
        ["* /hubs/farm/negotiate"] = "SignalR negotiation: The_live_hub_needs_a_key_and_admits_a_project_key_to_its_own_project_only",
    };

    /// <summary>Farm endpoints: a project's key is refused with 403 (there is no project id to hide).</summary>
    private static readonly HashSet<string> AdminEndpoints = new(StringComparer.Ordinal)
    {
        "GET /api/workers",
        "GET /api/farm/error-queues",
        "POST /api/farm/error-queues/{queue}/replay",
        "GET /api/keys",
        "POST /api/keys",
        "DELETE /api/keys/{keyId}",
        "GET /api/audit",
        "PUT /api/projects/{project}/share",
        "GET /api/fleet",
        "POST /api/prices/devices",
        "POST /api/prices/carbon",
    };

    [Fact]
    public async Task Every_endpoint_of_the_openapi_document_refuses_no_key_with_401_and_hides_another_projects_things_with_404()
    {
        var operations = await OperationsAsync();
        Assert.True(operations.Count >= 24, $"only {operations.Count} operations in /openapi/v1.json");
        using var anonymous = farm.Client(null);
        using var beta = farm.Client(farm.BetaProducer);
        using var alphaViewer = farm.Client(farm.Alpha[ApiKeyRole.Viewer]);
        var alphaKeys = await AlphaKeysAsync();
        var alphaKeyId = alphaKeys[0].Id;
        int alphaJobs;
        await using (var before = farm.CreateDbContext())
        {
            alphaJobs = await before.Jobs.CountAsync(j => j.Project == "alpha");
        }

        var failures = new List<string>();

        foreach (var (method, template) in operations)
        {
            var path = template
                .Replace("{project}", "alpha", StringComparison.Ordinal)
                .Replace("{jobId}", farm.AlphaJob.ToString(), StringComparison.Ordinal)
                .Replace("{shotId}", farm.AlphaShot.ToString(), StringComparison.Ordinal)
                .Replace("{frame}", "0", StringComparison.Ordinal)
                .Replace("{keyId}", alphaKeyId.ToString(), StringComparison.Ordinal)
                .Replace("{plateId}", farm.AlphaPlate.ToString(), StringComparison.Ordinal)
                .Replace("{webhookId}", farm.AlphaWebhook.ToString(), StringComparison.Ordinal)
                .Replace("{queue}", "render-cpu_error", StringComparison.Ordinal);
            Assert.DoesNotContain("{", path, StringComparison.Ordinal);
            var operation = $"{method} {template}";

            using (var response = await anonymous.SendAsync(Request(method, path)))
            {
                await ExpectAsync(response, HttpStatusCode.Unauthorized, operation + " without a key", failures);
            }

            using (var response = await beta.SendAsync(Request(method, path)))
            {
                if (CallerScoped.Contains(operation))
                {
                    var body = await response.Content.ReadAsStringAsync();
                    if (response.StatusCode != HttpStatusCode.OK || body.Contains("alpha", StringComparison.Ordinal))
                    {
                        failures.Add($"{operation} with beta's producer key: {(int)response.StatusCode}, expected 200 without alpha's things: {body[..Math.Min(body.Length, 300)]}");
                    }
                }
                else
                {
                    await ExpectAsync(response, AdminEndpoints.Contains(operation) ? HttpStatusCode.Forbidden : HttpStatusCode.NotFound, operation + " with beta's producer key", failures);
                }
            }

            // The ids are real: alpha's own viewer reads every one of alpha's things that the walk asked for.
            if (method == "GET" && !AdminEndpoints.Contains(operation) && !template.Contains("/keys", StringComparison.Ordinal) && !template.EndsWith("/audit", StringComparison.Ordinal) && !template.Contains("/webhooks", StringComparison.Ordinal))
            {
                using var own = await alphaViewer.SendAsync(Request(method, path));
                if (own.StatusCode != HttpStatusCode.OK)
                {
                    failures.Add($"{operation} with alpha's viewer key: {(int)own.StatusCode}, expected 200");
                }
            }
        }

        Assert.True(failures.Count == 0, string.Join('\n', failures));

        // Nothing of alpha's changed: the job, its keys, its jobs list; nothing was written for beta.
        await using var db = farm.CreateDbContext();
        Assert.Equal(JobState.Succeeded, (await db.Jobs.SingleAsync(j => j.Id == farm.AlphaJob)).State);
        Assert.Equal(alphaJobs, await db.Jobs.CountAsync(j => j.Project == "alpha"));
        Assert.Equal(0, await db.Jobs.CountAsync(j => j.Project == "beta"));
        Assert.All(alphaKeys, key => Assert.Null(db.ApiKeys.AsNoTracking().Single(k => k.Id == key.Id).RevokedAt));
        Assert.Null((await db.WebhookSubscriptions.SingleAsync(w => w.Id == farm.AlphaWebhook)).DeletedAt);
        Assert.Equal(0, await db.WebhookSubscriptions.CountAsync(w => w.Project == "beta"));
        Assert.Empty(await db.ApiKeys.Where(k => k.Name == "stolen").ToListAsync());
    }

    [Fact]
    public async Task Every_endpoint_needs_a_key_and_appears_in_the_openapi_document_unless_it_is_listed_as_open()
    {
        var documented = (await OperationsAsync()).Select(o => $"{o.Method} {o.Path}").ToHashSet(StringComparer.Ordinal);
        var endpoints = farm.Api.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["*"]).Select(m => (Name: $"{m} {Normalize(e.RoutePattern.RawText!)}", Endpoint: e)))
            .ToList();

        var open = endpoints.Where(e => e.Endpoint.Metadata.GetMetadata<IAllowAnonymous>() is not null).Select(e => e.Name).Order(StringComparer.Ordinal).ToList();

        // The API reference page (Scalar) serves its page and scripts under /api-docs: public, like the document it shows.
        Assert.Contains(open, name => name.StartsWith("GET /api-docs", StringComparison.Ordinal));
        Assert.Equal(OpenEndpoints.Keys.Order(StringComparer.Ordinal), open.Where(name => !name.StartsWith("GET /api-docs", StringComparison.Ordinal)));
        // An endpoint the document leaves out (a SignalR hub, say) would escape the walk: list how it is checked.
        Assert.All(endpoints.Where(e => !OpenEndpoints.ContainsKey(e.Name) && !UndocumentedChecked.ContainsKey(e.Name) && !e.Name.StartsWith("GET /api-docs", StringComparison.Ordinal)), e =>
            Assert.True(documented.Contains(e.Name), $"{e.Name} needs a key but is not in the OpenAPI document, so the walk cannot check it"));
    }

    [Fact]
    public async Task The_live_hub_needs_a_key_and_admits_a_project_key_to_its_own_project_only()
    {
        HubConnection Connect(string? key) => new HubConnectionBuilder()
            .WithUrl(new Uri(farm.Api.Server.BaseAddress, "/hubs/farm"), options =>
            {
                options.HttpMessageHandlerFactory = _ => farm.Api.Server.CreateHandler();
                options.Transports = HttpTransportType.LongPolling;
                options.AccessTokenProvider = () => Task.FromResult(key);
            })
            .Build();

        await using var anonymous = Connect(null);
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => anonymous.StartAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);

        await using var beta = Connect(farm.BetaProducer);
        await beta.StartAsync();
        var hidden = await Assert.ThrowsAsync<HubException>(() => beta.InvokeAsync("WatchProject", "alpha"));
        Assert.Contains("no project 'alpha'", hidden.Message, StringComparison.Ordinal);
        await beta.InvokeAsync("WatchProject", "beta");

        await using var alpha = Connect(farm.Alpha[ApiKeyRole.Viewer]);
        await alpha.StartAsync();
        await alpha.InvokeAsync("WatchProject", "alpha");
    }

    [Fact]
    public async Task Roles_are_ordered_viewer_reads_submitter_submits_and_controls_producer_manages_keys()
    {
        using var viewer = farm.Client(farm.Alpha[ApiKeyRole.Viewer]);
        using var submitter = farm.Client(farm.Alpha[ApiKeyRole.Submitter]);
        using var producer = farm.Client(farm.Alpha[ApiKeyRole.Producer]);

        using (var read = await viewer.GetAsync($"/api/jobs/{farm.AlphaJob}/cost"))
        {
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        }

        await AssertProblemAsync(await viewer.PostAsync($"/api/jobs/{farm.AlphaJob}/pause", null), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await viewer.PostAsync("/api/projects/alpha/jobs", Yaml(AccessFarmFixture.Spec("alpha"))), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await submitter.GetAsync("/api/projects/alpha/keys"), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await producer.GetAsync("/api/workers"), HttpStatusCode.Forbidden);

        // A submitter submits to its own project only; the spec's project must be the URL's.
        var jobId = await FarmChecks.SubmitAsync(submitter, "alpha", AccessFarmFixture.Spec("alpha"));
        await AssertProblemAsync(await submitter.PostAsync("/api/projects/beta/jobs", Yaml(AccessFarmFixture.Spec("beta"))), HttpStatusCode.NotFound);
        using var beta = farm.Client(farm.BetaProducer);
        var probe = await AssertProblemAsync(await beta.PostAsync("/api/projects/beta/jobs", Yaml(AccessFarmFixture.Spec("beta").Replace("shots:", $"after: [{farm.AlphaJob}]\nshots:", StringComparison.Ordinal))), HttpStatusCode.BadRequest);
        Assert.Contains($"there is no job {farm.AlphaJob}", probe.GetProperty("detail").GetString(), StringComparison.Ordinal);
        using (var cancel = await submitter.PostAsync($"/api/jobs/{jobId}/cancel", null))
        {
            Assert.True(cancel.StatusCode is HttpStatusCode.OK or HttpStatusCode.Conflict, $"{(int)cancel.StatusCode}: {await cancel.Content.ReadAsStringAsync()}");
        }

        // A producer hands out keys up to its own role, in its own project; the key is shown once.
        using var created = await producer.PostAsJsonAsync("/api/projects/alpha/keys", new { name = "ci previews", role = "submitter" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using var body = JsonDocument.Parse(await created.Content.ReadAsStringAsync());
        var key = body.RootElement.GetProperty("key").GetString()!;
        var info = body.RootElement.GetProperty("info");
        Assert.StartsWith($"pf_{info.GetProperty("prefix").GetString()}_", key, StringComparison.Ordinal);
        var list = await producer.GetStringAsync("/api/projects/alpha/keys");
        Assert.Contains(info.GetProperty("prefix").GetString()!, list, StringComparison.Ordinal);
        Assert.DoesNotContain(key, list, StringComparison.Ordinal);
        await using (var db = farm.CreateDbContext())
        {
            var stored = await db.ApiKeys.SingleAsync(k => k.Id == info.GetProperty("id").GetGuid());
            Assert.DoesNotContain(key, stored.Hash, StringComparison.Ordinal);
            Assert.Equal(64, stored.Hash.Length);
        }

        using var newKey = farm.Client(key);
        Assert.Equal(HttpStatusCode.OK, (await newKey.GetAsync($"/api/jobs/{farm.AlphaJob}")).StatusCode);

        await AssertProblemAsync(await producer.PostAsJsonAsync("/api/projects/alpha/keys", new { name = "x", role = "admin" }), HttpStatusCode.BadRequest);
        await AssertProblemAsync(await producer.PostAsJsonAsync("/api/keys", new { name = "x", role = "admin" }), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await producer.PostAsJsonAsync("/api/projects/beta/keys", new { name = "x", role = "viewer" }), HttpStatusCode.NotFound);
        await AssertProblemAsync(await producer.PostAsJsonAsync("/api/projects/alpha/keys", new { name = "", role = "owner" }), HttpStatusCode.BadRequest);

        // Revoked: refused at once, and the row stays.
        using (var revoke = await producer.DeleteAsync($"/api/projects/alpha/keys/{info.GetProperty("id").GetGuid()}"))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        var refused = await AssertProblemAsync(await newKey.GetAsync($"/api/jobs/{farm.AlphaJob}"), HttpStatusCode.Unauthorized);
        Assert.Contains("revoked", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Submitters_quote_viewers_read_quotes_and_only_producers_manage_webhooks()
    {
        using var viewer = farm.Client(farm.Alpha[ApiKeyRole.Viewer]);
        using var submitter = farm.Client(farm.Alpha[ApiKeyRole.Submitter]);
        using var producer = farm.Client(farm.Alpha[ApiKeyRole.Producer]);
        var hook = new { url = "https://203.0.113.10/producer-hook", events = new[] { "job.succeeded" } };

        await AssertProblemAsync(await viewer.PostAsync("/api/projects/alpha/quotes", Yaml(AccessFarmFixture.Spec("alpha"))), HttpStatusCode.Forbidden);
        using (var quote = await submitter.PostAsync("/api/projects/alpha/quotes", Yaml(AccessFarmFixture.Spec("alpha"))))
        {
            Assert.Equal(HttpStatusCode.OK, quote.StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync($"/api/jobs/{farm.AlphaJob}/quote")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync("/api/projects/alpha/quotes/accuracy")).StatusCode);
        await AssertProblemAsync(await submitter.GetAsync("/api/projects/alpha/webhooks"), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await submitter.PostAsJsonAsync("/api/projects/alpha/webhooks", hook), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await submitter.GetAsync($"/api/projects/alpha/webhooks/{farm.AlphaWebhook}/deliveries"), HttpStatusCode.Forbidden);

        using var created = await producer.PostAsJsonAsync("/api/projects/alpha/webhooks", hook);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        using var beta = farm.Client(farm.BetaProducer);
        await AssertProblemAsync(await beta.DeleteAsync($"/api/projects/beta/webhooks/{id}"), HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.OK, (await producer.DeleteAsync($"/api/projects/alpha/webhooks/{id}")).StatusCode);
        await AssertProblemAsync(await producer.DeleteAsync($"/api/projects/alpha/webhooks/{id}"), HttpStatusCode.NotFound);
    }

    public static TheoryData<string, string, string> BadKeys => new()
    {
        { "X-Api-Key", "not-a-key", "malformed" },
        { "Authorization", "Basic dXNlcjpwYXNz", "malformed" },
        { "Authorization", "Bearer", "malformed" },
        { "X-Api-Key", "pf_00000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not known" },
        { "X-Api-Key", "pf_" + new string('x', 16_000), "malformed" },
        { "Authorization", "Bearer pf_" + new string('\u00e9', 100), "malformed" },
    };

    [Theory]
    [MemberData(nameof(BadKeys))]
    public async Task A_malformed_unknown_or_oversized_key_is_a_401_problem_never_a_500(string header, string value, string reason)
    {
        using var http = farm.Client(null);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{farm.AlphaJob}");
        request.Headers.TryAddWithoutValidation(header, value);

        var problem = await AssertProblemAsync(await http.SendAsync(request), HttpStatusCode.Unauthorized);

        Assert.Contains(reason, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(AccessFarmFixture.SecretName, problem.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bearer_and_x_api_key_are_both_accepted_two_keys_at_once_are_refused_and_an_expired_key_is_a_401()
    {
        var key = farm.Alpha[ApiKeyRole.Viewer];
        using var http = farm.Client(null);
        using var bearer = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{farm.AlphaJob}") { Headers = { { "Authorization", $"Bearer {key}" } } };
        using var both = new HttpRequestMessage(HttpMethod.Get, $"/api/jobs/{farm.AlphaJob}") { Headers = { { "Authorization", $"Bearer {key}" }, { "X-Api-Key", key } } };
        var expired = await TestKeys.CreateAsync(farm.ConnectionString, "alpha", ApiKeyRole.Viewer, DateTime.UtcNow.AddSeconds(1));
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        using var late = farm.Client(expired);

        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(bearer)).StatusCode);
        await AssertProblemAsync(await http.SendAsync(both), HttpStatusCode.Unauthorized);
        var problem = await AssertProblemAsync(await late.GetAsync($"/api/jobs/{farm.AlphaJob}"), HttpStatusCode.Unauthorized);
        Assert.Contains("expired", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_audit_log_records_who_did_what_and_only_admins_and_the_projects_producers_read_it()
    {
        using var submitter = farm.Client(farm.Alpha[ApiKeyRole.Submitter]);
        using var producer = farm.Client(farm.Alpha[ApiKeyRole.Producer]);
        using var viewer = farm.Client(farm.Alpha[ApiKeyRole.Viewer]);
        using var beta = farm.Client(farm.BetaProducer);
        var jobId = await FarmChecks.SubmitAsync(submitter, "alpha", AccessFarmFixture.Spec("alpha"));
        using (await submitter.PostAsync($"/api/jobs/{jobId}/cancel", null))
        {
        }

        using (await submitter.PostAsync($"/api/jobs/{farm.AlphaJob}/cancel", null))
        {
        }

        var page = JsonDocument.Parse(await producer.GetStringAsync("/api/projects/alpha/audit")).RootElement.GetProperty("entries").EnumerateArray()
            .Select(e => (Action: e.GetProperty("action").GetString(), Target: e.GetProperty("target").GetString(), Outcome: e.GetProperty("outcome").GetString(), Project: e.GetProperty("project").GetString(), Prefix: e.GetProperty("keyPrefix").GetString()))
            .ToList();
        var submitterPrefix = farm.Alpha[ApiKeyRole.Submitter][3..11];

        Assert.Contains(("job.submit", jobId.ToString(), "ok", "alpha", submitterPrefix), page);
        Assert.Contains(page, e => e.Action == "job.cancel" && e.Target == jobId.ToString() && e.Prefix == submitterPrefix && e.Outcome == "ok");
        Assert.Contains(page, e => e.Action == "job.cancel" && e.Target == farm.AlphaJob.ToString() && e.Outcome!.StartsWith("conflict", StringComparison.Ordinal));
        Assert.All(page, e => Assert.Equal("alpha", e.Project));
        await AssertProblemAsync(await viewer.GetAsync("/api/projects/alpha/audit"), HttpStatusCode.Forbidden);
        await AssertProblemAsync(await beta.GetAsync("/api/projects/alpha/audit"), HttpStatusCode.NotFound);
        Assert.Contains(jobId.ToString(), await farm.Http.GetStringAsync("/api/audit"), StringComparison.Ordinal);

        // Append-only in the database itself, whoever connects.
        await using var db = farm.CreateDbContext();
        var error = await Assert.ThrowsAnyAsync<Exception>(() => db.Database.ExecuteSqlRawAsync("UPDATE audit_log SET outcome = 'ok'"));
        Assert.Contains("append-only", error.Message, StringComparison.Ordinal);
        await Assert.ThrowsAnyAsync<Exception>(() => db.Database.ExecuteSqlRawAsync("DELETE FROM audit_log"));
    }

    private async Task<List<(string Method, string Path)>> OperationsAsync()
    {
        using var http = farm.Client(null);
        using var document = JsonDocument.Parse(await http.GetStringAsync("/openapi/v1.json"));
        return [.. document.RootElement.GetProperty("paths").EnumerateObject()
            .SelectMany(path => path.Value.EnumerateObject()
                .Where(operation => operation.Name is "get" or "post" or "put" or "patch" or "delete")
                .Select(operation => (operation.Name.ToUpperInvariant(), path.Name)))];
    }

    private async Task<List<ApiKey>> AlphaKeysAsync()
    {
        await using var db = farm.CreateDbContext();
        return await db.ApiKeys.Where(k => k.Project == "alpha").OrderBy(k => k.CreatedAt).ToListAsync();
    }

    /// <summary>A request as a client would send it: a body that would do harm if the endpoint let it through.</summary>
    private static HttpRequestMessage Request(string method, string path)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method == "POST" && path.EndsWith("/jobs", StringComparison.Ordinal))
        {
            request.Content = Yaml(AccessFarmFixture.Spec("alpha"));
        }
        else if (method == "POST" && path.EndsWith("/quotes", StringComparison.Ordinal))
        {
            request.Content = Yaml(AccessFarmFixture.Spec("alpha"));
        }
        else if (method == "POST" && path.EndsWith("/webhooks", StringComparison.Ordinal))
        {
            request.Content = JsonContent.Create(new { url = "https://203.0.113.10/stolen", events = new[] { "job.succeeded", "shot.succeeded" } });
        }
        else if (method == "POST" && path.Contains("/keys", StringComparison.Ordinal))
        {
            request.Content = JsonContent.Create(new { name = "stolen", role = path.StartsWith("/api/keys", StringComparison.Ordinal) ? "admin" : "producer" });
        }

        return request;
    }

    private static StringContent Yaml(string text) => new(text, Encoding.UTF8, "application/yaml");

    /// <summary>The route's template as OpenAPI writes it: <c>{jobId:guid}</c> → <c>{jobId}</c>.</summary>
    private static string Normalize(string pattern)
    {
        var text = System.Text.RegularExpressions.Regex.Replace(pattern, @"\{([^}:]+)(:[^}]*)?\}", "{$1}");
        // A group's own route (MapPost("") in a group) ends in '/', which the document leaves out.
        text = text.Length > 1 ? text.TrimEnd('/') : text;
        return text.StartsWith('/') ? text : "/" + text;
    }

    private static async Task ExpectAsync(HttpResponseMessage response, HttpStatusCode expected, string what, List<string> failures)
    {
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != expected)
        {
            failures.Add($"{what}: {(int)response.StatusCode}, expected {(int)expected}: {body[..Math.Min(body.Length, 300)]}");
            return;
        }

        if (response.Content.Headers.ContentType?.MediaType != "application/problem+json")
        {
            failures.Add($"{what}: {response.Content.Headers.ContentType}, expected problem details");
        }

        if (body.Contains(AccessFarmFixture.SecretName, StringComparison.Ordinal) || body.Contains("alphaconfidential", StringComparison.Ordinal) || body.Contains("\"s1\"", StringComparison.Ordinal))
        {
            failures.Add($"{what}: the answer holds alpha's data: {body}");
        }
    }

    internal static async Task<JsonElement> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode expected)
    {
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode} {response.ReasonPhrase}: {body}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            using var problem = JsonDocument.Parse(body);
            Assert.Equal((int)expected, problem.RootElement.GetProperty("status").GetInt32());
            return problem.RootElement.Clone();
        }
    }
}
