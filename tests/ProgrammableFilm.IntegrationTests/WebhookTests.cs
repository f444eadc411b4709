using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Webhooks;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>A farm whose webhooks may call 127.0.0.1 (the test's receiver) and retry after a second.</summary>
public sealed class WebhookFarmFixture : FarmFixture
{
    protected override int WorkerCount => 1;

    protected override IReadOnlyDictionary<string, string> ExtraSettings => new Dictionary<string, string>
    {
        ["Webhooks:AllowLoopback"] = "true",
        ["Webhooks:RetryBackoff"] = "00:00:01",
        ["Webhooks:Timeout"] = "00:00:05",
    };
}

public class WebhookTests(WebhookFarmFixture farm) : IClassFixture<WebhookFarmFixture>, IAsyncDisposable
{
    private readonly WebhookReceiver _receiver = new();

    public ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return _receiver.DisposeAsync();
    }

    [Fact]
    public async Task Job_and_shot_events_arrive_signed_once_each_and_the_log_shows_them()
    {
        const string project = "it-hooks";
        var hook = await CreateAsync(project, _receiver.Url("all"), "job.succeeded", "job.failed", "shot.succeeded");
        var failuresOnly = await CreateAsync(project, _receiver.Url("failures"), "job.failed");
        var secret = hook.GetProperty("secret").GetString()!;
        Assert.StartsWith("whsec_", secret, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, await farm.Http.GetStringAsync($"/api/projects/{project}/webhooks"), StringComparison.Ordinal);

        var job = await FarmChecks.SubmitAsync(farm.Http, project, Spec(project, "hooked", "one", "two"));
        await FarmChecks.WaitForJobAsync(farm.Http, job, "Succeeded", TimeSpan.FromMinutes(2), () => farm.WorkerOutput);

        var received = await _receiver.WaitForAsync("all", 3, TimeSpan.FromSeconds(30));
        Assert.All(received, r => Assert.True(WebhookReceiver.Verify(secret, r), $"signature of {r.Text}"));
        Assert.All(received, r => Assert.False(WebhookReceiver.Verify(failuresOnly.GetProperty("secret").GetString()!, r)));
        var bodies = received.Select(r => JsonDocument.Parse(r.Body).RootElement).ToList();
        Assert.Equal(["job.succeeded", "shot.succeeded", "shot.succeeded"], bodies.Select(b => b.GetProperty("event").GetString()).Order(StringComparer.Ordinal));
        Assert.All(bodies, b => Assert.Equal(project, b.GetProperty("project").GetString()));
        Assert.All(bodies, b => Assert.Equal(job, b.GetProperty("data").GetProperty("jobId").GetGuid()));
        Assert.All(received, r => Assert.Equal(JsonDocument.Parse(r.Body).RootElement.GetProperty("id").GetString(), r.Headers["PFilm-Delivery"]));
        var finished = bodies.Single(b => b.GetProperty("event").GetString() == "job.succeeded").GetProperty("data");
        Assert.Equal("Succeeded", finished.GetProperty("state").GetString());
        // The ledger's figure for the job (its one-frame attempts are each billed to the micro-dollar: a warm worker's may be $0).
        var billed = (await farm.Http.GetFromJsonAsync<JobCost>($"/api/jobs/{job}/cost", SpecJson.Options))!;
        Assert.True(billed.DeviceSeconds > 0);
        Assert.Equal(billed.Cost, finished.GetProperty("costUsd").GetDecimal());
        Assert.Equal(["one", "two"], bodies.Where(b => b.GetProperty("event").GetString() == "shot.succeeded").Select(b => b.GetProperty("data").GetProperty("shot").GetString()).Order(StringComparer.Ordinal));

        var log = await DeliveriesAsync(project, hook);
        Assert.Equal(3, log.Count);
        Assert.All(log, d => Assert.Equal(("succeeded", 1, 200), (d.GetProperty("state").GetString(), d.GetProperty("attempts").GetInt32(), d.GetProperty("log")[0].GetProperty("statusCode").GetInt32())));

        // A job that fails (it waits for a cancelled one) reaches both webhooks; the sweep sends nothing twice. The
        // cancelled job is long (40 tasks on one worker), so the cancel always finds it unfinished.
        var cancelled = await FarmChecks.SubmitAsync(farm.Http, project, Spec(project, "long", "x").Replace("duration: 0.125", "duration: 30", StringComparison.Ordinal));
        using (var cancel = await farm.Http.PostAsync($"/api/jobs/{cancelled}/cancel", null))
        {
            Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        }

        var doomed = await FarmChecks.SubmitAsync(farm.Http, project, Spec(project, "doomed", "y").Replace("shots:", $"after: [{cancelled}]\nshots:", StringComparison.Ordinal));
        var failure = Assert.Single(await _receiver.WaitForAsync("failures", 1, TimeSpan.FromSeconds(30)));
        Assert.Equal("job.failed", failure.Headers["PFilm-Event"]);
        Assert.Equal(doomed, JsonDocument.Parse(failure.Body).RootElement.GetProperty("data").GetProperty("jobId").GetGuid());
        await _receiver.WaitForAsync("all", 4, TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(4, _receiver.At("all").Count);
        Assert.Single(_receiver.At("failures"));
    }

    [Fact]
    public async Task A_budget_set_below_what_was_spent_sends_budget_soft_and_budget_hard_once_each()
    {
        const string project = "it-hooks-budget";
        var hook = await CreateAsync(project, _receiver.Url("budget"), "budget.soft", "budget.hard");
        await FarmChecks.PriceProjectCpuAsync(farm.Http, project);

        var job = await FarmChecks.SubmitAsync(farm.Http, project, Spec(project, "spender", "one"));
        await FarmChecks.WaitForJobAsync(farm.Http, job, "Succeeded", TimeSpan.FromMinutes(2), () => farm.WorkerOutput);

        using (var put = await farm.Http.PutAsJsonAsync($"/api/projects/{project}/budget", new { limitUsd = 0.000001m, softFraction = 0.8 }))
        {
            Assert.True(put.StatusCode == HttpStatusCode.OK, await put.Content.ReadAsStringAsync());
        }

        // The relay hands crossings on every sweep interval; each is sent once, signed, with the figures.
        var received = await _receiver.WaitForAsync("budget", 2, TimeSpan.FromSeconds(60));
        Assert.All(received, r => Assert.True(WebhookReceiver.Verify(hook.GetProperty("secret").GetString()!, r), r.Text));
        var bodies = received.Select(r => JsonDocument.Parse(r.Body).RootElement).ToList();
        Assert.Equal(["budget.hard", "budget.soft"], bodies.Select(b => b.GetProperty("event").GetString()).Order(StringComparer.Ordinal));
        Assert.All(bodies, b => Assert.Equal(0.000001m, b.GetProperty("data").GetProperty("limitUsd").GetDecimal()));
        // A crossing is spend reaching the limit: a tiny shot's bill may be the limit's one micro-dollar exactly.
        Assert.All(bodies, b => Assert.True(b.GetProperty("data").GetProperty("spentUsd").GetDecimal() >= 0.000001m));
        Assert.All(bodies, b => Assert.Equal(JsonValueKind.Null, b.GetProperty("data").GetProperty("jobId").ValueKind));
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(2, _receiver.At("budget").Count);
    }

    [Fact]
    public async Task A_receiver_that_fails_twice_gets_the_event_on_the_third_attempt_after_backoff()
    {
        const string project = "it-hooks-flaky";
        _receiver.Answer("flaky", 500, 503);
        var hook = await CreateAsync(project, _receiver.Url("flaky"), "shot.succeeded");
        var job = await FarmChecks.SubmitAsync(farm.Http, project, Spec(project, "flaky", "one"));
        await FarmChecks.WaitForJobAsync(farm.Http, job, "Succeeded", TimeSpan.FromMinutes(2), () => farm.WorkerOutput);

        var received = await _receiver.WaitForAsync("flaky", 3, TimeSpan.FromSeconds(40));

        // The same body every time (receivers dedupe on its id), signed afresh.
        Assert.Single(received.Select(r => r.Text).Distinct(StringComparer.Ordinal));
        Assert.All(received, r => Assert.True(WebhookReceiver.Verify(hook.GetProperty("secret").GetString()!, r)));
        var delivery = Assert.Single(await WaitForDeliveryAsync(project, hook, "succeeded"));
        var attempts = delivery.GetProperty("log").EnumerateArray().ToList();
        Assert.Equal([1, 2, 3], attempts.Select(a => a.GetProperty("attempt").GetInt32()));
        Assert.Equal([500, 503, 200], attempts.Select(a => a.GetProperty("statusCode").GetInt32()));
        Assert.Equal(["HTTP 500 Internal Server Error", "HTTP 503 Service Unavailable"], attempts.Take(2).Select(a => a.GetProperty("error").GetString()));
        var at = attempts.Select(a => a.GetProperty("at").GetDateTime()).ToList();
        Assert.True(at[1] - at[0] >= TimeSpan.FromSeconds(0.9), $"first retry after {at[1] - at[0]}");
        Assert.True(at[2] - at[1] >= TimeSpan.FromSeconds(1.9), $"second retry after {at[2] - at[1]} (backoff doubles)");
    }

    [Fact]
    public async Task The_outbox_delivers_an_event_key_once_however_often_it_is_enqueued()
    {
        const string project = "it-hooks-budget";
        var hook = await CreateAsync(project, _receiver.Url("budget"), "budget.soft");
        var outbox = farm.Api.Services.GetRequiredService<WebhookOutbox>();

        // What budget code does when a project crosses its soft limit; a duplicate event calls it again.
        var written = new List<int>();
        for (var i = 0; i < 2; i++)
        {
            await using var db = farm.Api.Services.GetRequiredService<IDbContextFactory<Data.FarmDbContext>>().CreateDbContext();
            await using var transaction = await db.Database.BeginTransactionAsync();
            written.Add(await outbox.EnqueueAsync(db, project, "budget.soft", new { limitUsd = 10m, spentUsd = 8.5m }, $"budget.soft:{project}:1", CancellationToken.None));
            await transaction.CommitAsync();
        }

        var received = Assert.Single(await _receiver.WaitForAsync("budget", 1, TimeSpan.FromSeconds(30)));
        Assert.Equal([1, 0], written);
        Assert.Equal(8.5m, JsonDocument.Parse(received.Body).RootElement.GetProperty("data").GetProperty("spentUsd").GetDecimal());
        Assert.True(WebhookReceiver.Verify(hook.GetProperty("secret").GetString()!, received));

        // Deleted: listed no more, its log stays, nothing more is sent.
        using (var deleted = await farm.Http.DeleteAsync($"/api/projects/{project}/webhooks/{hook.GetProperty("id").GetGuid()}"))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }

        Assert.Equal("[]", await farm.Http.GetStringAsync($"/api/projects/{project}/webhooks"));
        Assert.Single(await DeliveriesAsync(project, hook));
        await using (var db = farm.Api.Services.GetRequiredService<IDbContextFactory<Data.FarmDbContext>>().CreateDbContext())
        {
            Assert.Equal(0, await outbox.EnqueueAsync(db, project, "budget.soft", new { limitUsd = 10m }, $"budget.soft:{project}:2", CancellationToken.None));
        }
    }

    public static TheoryData<string, string> BadRequests => new()
    {
        { """{"url": "not a url", "events": ["job.succeeded"]}""", "url" },
        { """{"url": "ftp://example.com/hook", "events": ["job.succeeded"]}""", "url" },
        { """{"url": "http://169.254.169.254/latest/meta-data/", "events": ["job.succeeded"]}""", "url" },
        { """{"url": "http://[fe80::1]/hook", "events": ["job.succeeded"]}""", "url" },
        { """{"url": "http://metadata.google.internal/computeMetadata/v1/", "events": ["job.succeeded"]}""", "url" },
        { """{"url": "https://no-such-host.invalid/hook", "events": ["job.succeeded"]}""", "url" },
        { """{"url": "http://127.0.0.1:9/hook", "events": ["job.exploded"]}""", "events[0]" },
        { """{"url": "http://127.0.0.1:9/hook", "events": []}""", "events" },
        { """{"url": "http://127.0.0.1:9/hook", "events": ["job.failed", "job.failed"]}""", "events[1]" },
        { """{"url": "http://127.0.0.1:9/hook"}""", "events" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task A_bad_webhook_request_is_a_400_naming_the_field_and_writes_nothing(string body, string field)
    {
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        var problem = await AccessTests.AssertProblemAsync(await farm.Http.PostAsync("/api/projects/it-hooks-bad/webhooks", content), HttpStatusCode.BadRequest);

        Assert.Contains(field, problem.GetProperty("errors").EnumerateObject().Select(e => e.Name));
        await using var db = farm.CreateDbContext();
        Assert.Equal(0, await db.WebhookSubscriptions.CountAsync(s => s.Project == "it-hooks-bad"));
    }

    /// <summary>One-frame procedural shots: cheap, and each ends with its own shot.succeeded.</summary>
    private static string Spec(string project, string name, params string[] shots) =>
        $"project: {project}\nname: {name}\nshots:\n" + string.Concat(shots.Select(s => $"  - {{name: {s}, prompt: a red car, duration: 0.125, fps: 8, width: 64, height: 64}}\n"));

    [Theory]
    [InlineData("""{"url": """)]
    [InlineData("""{"url": "http://127.0.0.1:9/hook", "events": "job.failed"}""")]
    [InlineData("""[1, 2]""")]
    public async Task A_body_that_is_not_a_webhook_request_is_a_400_problem_not_a_500(string body)
    {
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        await AccessTests.AssertProblemAsync(await farm.Http.PostAsync("/api/projects/it-hooks-garbage/webhooks", content), HttpStatusCode.BadRequest);

        await using var db = farm.CreateDbContext();
        Assert.Equal(0, await db.WebhookSubscriptions.CountAsync(s => s.Project == "it-hooks-garbage"));
    }

    private async Task<JsonElement> CreateAsync(string project, string url, params string[] events)
    {
        using var response = await farm.Http.PostAsJsonAsync($"/api/projects/{project}/webhooks", new { url, events, description = "test receiver" });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private async Task<List<JsonElement>> DeliveriesAsync(string project, JsonElement hook) =>
        [.. JsonDocument.Parse(await farm.Http.GetStringAsync($"/api/projects/{project}/webhooks/{hook.GetProperty("id").GetGuid()}/deliveries")).RootElement.EnumerateArray().Select(e => e.Clone())];

    private async Task<List<JsonElement>> WaitForDeliveryAsync(string project, JsonElement hook, string state)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var log = await DeliveriesAsync(project, hook);
            if (log.Count > 0 && log.All(d => d.GetProperty("state").GetString() == state) || DateTime.UtcNow > deadline)
            {
                return log;
            }

            await Task.Delay(200);
        }
    }
}
