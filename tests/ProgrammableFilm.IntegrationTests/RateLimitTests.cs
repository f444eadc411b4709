using System.Net;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>A farm whose keys may make five requests a minute.</summary>
public sealed class RateLimitedFarmFixture : FarmFixture
{
    protected override int WorkerCount => 0;

    protected override IReadOnlyDictionary<string, string> ExtraSettings => new Dictionary<string, string>
    {
        ["Auth:RateLimit:PermitLimit"] = "5",
        ["Auth:RateLimit:Window"] = "00:01:00",
        ["Api:ConcurrentReads"] = "1",
    };
}

public class RateLimitTests(RateLimitedFarmFixture farm) : IClassFixture<RateLimitedFarmFixture>
{
    [Fact]
    public async Task A_runaway_key_gets_429_with_retry_after_while_other_keys_and_health_are_served()
    {
        using var runaway = farm.Api.CreateClient().WithKey(await TestKeys.CreateAsync(farm.ConnectionString, "loop", ApiKeyRole.Viewer));
        using var other = farm.Api.CreateClient().WithKey(await TestKeys.CreateAsync(farm.ConnectionString, "calm", ApiKeyRole.Viewer));

        var answers = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            using var response = await runaway.GetAsync("/api/projects/loop/jobs");
            answers.Add(response.StatusCode);
        }

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 5), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 3)], answers);
        using var limited = await runaway.GetAsync("/api/projects/loop/jobs");
        var retryAfter = limited.Headers.RetryAfter?.Delta;
        Assert.True(retryAfter is { } wait && wait > TimeSpan.Zero && wait <= TimeSpan.FromMinutes(1), $"Retry-After: {limited.Headers.RetryAfter}");
        var problem = await AccessTests.AssertProblemAsync(limited, HttpStatusCode.TooManyRequests);
        Assert.Contains("5 requests per 60 s", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        using (var calm = await other.GetAsync("/api/projects/calm/jobs"))
        {
            Assert.Equal(HttpStatusCode.OK, calm.StatusCode);
        }

        for (var i = 0; i < 10; i++)
        {
            using var health = await runaway.GetAsync("/health/live");
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }
    }

    [Fact]
    public async Task With_one_read_at_a_time_sixteen_reads_made_together_wait_their_turn_and_are_all_answered()
    {
        var clients = await Task.WhenAll(Enumerable.Range(0, 4).Select(async i =>
            farm.Api.CreateClient().WithKey(await TestKeys.CreateAsync(farm.ConnectionString, $"turns{i}", ApiKeyRole.Viewer))));

        var answers = await Task.WhenAll(clients.SelectMany((client, i) => Enumerable.Range(0, 4).Select(_ => client.GetAsync($"/api/projects/turns{i}/jobs"))));

        Assert.All(answers, answer => Assert.Equal(HttpStatusCode.OK, answer.StatusCode));
        foreach (var client in clients)
        {
            client.Dispose();
        }
    }
}
