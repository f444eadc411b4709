using System.Net;
using Npgsql;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// <c>/health/ready</c> on the API and the worker reports each dependency it needs, going unhealthy (503) while that
/// dependency is down and healthy again once it is back; <c>/health/live</c> stays 200 throughout (a database outage
/// must not make Kubernetes restart the processes). Faults: PostgreSQL stopped, RabbitMQ's app stopped, the storage
/// root replaced by a file (as root, permissions do not stop writes: an unmounted volume is the honest stand-in),
/// a migration missing.
/// </summary>
[Collection(ObservedFarmCollection.Name)]
public sealed class HealthEndpointTests(ObservedFarmFixture farm)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(45);

    [Fact]
    public async Task Api_and_worker_are_live_and_ready_with_every_dependency_checked()
    {
        var api = await farm.GetHealthAsync(farm.Api, "/health/ready");
        Assert.Equal(HttpStatusCode.OK, api.Status);
        Assert.Equal(["migrations", "postgresql", "rabbitmq", "storage"], api.Checks.Keys.Order(StringComparer.Ordinal));
        Assert.All(api.Checks.Values, status => Assert.Equal("Healthy", status));

        var worker = await farm.GetHealthAsync(farm.Worker, "/health/ready");
        Assert.Equal(HttpStatusCode.OK, worker.Status);
        Assert.Equal(["rabbitmq", "storage"], worker.Checks.Keys.Order(StringComparer.Ordinal));

        Assert.Equal(HttpStatusCode.OK, (await farm.GetHealthAsync(farm.Api, "/health/live")).Status);
        Assert.Equal(HttpStatusCode.OK, (await farm.GetHealthAsync(farm.Worker, "/health/live")).Status);
    }

    [Fact]
    public async Task A_new_farm_says_at_start_how_to_make_the_first_key_and_refuses_requests_without_one()
    {
        Assert.Contains("No admin API key exists", farm.Output, StringComparison.Ordinal);
        Assert.Contains("create-key --role admin --name NAME", farm.Output, StringComparison.Ordinal);

        using var anonymous = await farm.Http.GetAsync(new Uri(farm.Api, "/api/workers"));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using var admin = new HttpRequestMessage(HttpMethod.Get, new Uri(farm.Api, "/api/workers")) { Headers = { { "Authorization", $"Bearer {farm.AdminKey}" } } };
        using var workers = await farm.Http.SendAsync(admin);
        Assert.Equal(HttpStatusCode.OK, workers.StatusCode);
    }

    [Fact]
    public async Task PostgreSQL_down_makes_the_api_unready_but_live_and_it_recovers()
    {
        await RunHelperAsync("pg-stop");
        try
        {
            await WaitForCheckAsync(farm.Api, "postgresql", "Unhealthy");
            Assert.Equal(HttpStatusCode.OK, (await farm.GetHealthAsync(farm.Api, "/health/live")).Status);
            Assert.Equal(HttpStatusCode.OK, (await farm.GetHealthAsync(farm.Worker, "/health/ready")).Status);
        }
        finally
        {
            await RunHelperAsync("pg-start");

            // This process's idle pooled connections died with the server: later test classes must not get them.
            NpgsqlConnection.ClearAllPools();
        }

        await WaitForReadyAsync(farm.Api);
    }

    [Fact]
    public async Task RabbitMQ_down_makes_api_and_worker_unready_but_live_and_they_recover()
    {
        await RunHelperAsync("rabbitmqctl", "stop_app");
        try
        {
            await WaitForCheckAsync(farm.Api, "rabbitmq", "Unhealthy");
            await WaitForCheckAsync(farm.Worker, "rabbitmq", "Unhealthy");
            Assert.Equal(HttpStatusCode.OK, (await farm.GetHealthAsync(farm.Api, "/health/live")).Status);
            Assert.Equal(HttpStatusCode.OK, (await farm.GetHealthAsync(farm.Worker, "/health/live")).Status);
        }
        finally
        {
            await RunHelperAsync("rabbitmqctl", "start_app");
        }

        await WaitForReadyAsync(farm.Api);
        await WaitForReadyAsync(farm.Worker);
    }

    [Fact]
    public async Task Unwritable_storage_makes_api_and_worker_unready_and_they_recover()
    {
        var aside = farm.StorageRoot + ".aside";
        Directory.Move(farm.StorageRoot, aside);
        await File.WriteAllTextAsync(farm.StorageRoot, "not a directory");
        try
        {
            await WaitForCheckAsync(farm.Api, "storage", "Unhealthy");
            await WaitForCheckAsync(farm.Worker, "storage", "Unhealthy");
        }
        finally
        {
            File.Delete(farm.StorageRoot);
            Directory.Move(aside, farm.StorageRoot);
        }

        await WaitForReadyAsync(farm.Api);
        await WaitForReadyAsync(farm.Worker);
    }

    [Fact]
    public async Task A_missing_migration_makes_the_api_unready_until_it_is_applied()
    {
        var database = farm.Environment["Database__ConnectionString"];
        string version;
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            await using var select = new NpgsqlCommand("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations) RETURNING version", connection);
            version = (string)(await select.ExecuteScalarAsync())!;
        }

        try
        {
            var answer = await WaitForCheckAsync(farm.Api, "migrations", "Unhealthy");
            Assert.Contains(version, answer.Body, StringComparison.Ordinal);
        }
        finally
        {
            await using var connection = new NpgsqlConnection(database);
            await connection.OpenAsync();
            await using var insert = new NpgsqlCommand("INSERT INTO schema_migrations (version, applied_at) VALUES (@version, 'restored by test')", connection);
            insert.Parameters.AddWithValue("version", version);
            await insert.ExecuteNonQueryAsync();
        }

        await WaitForReadyAsync(farm.Api);
    }

    private async Task<HealthAnswer> WaitForCheckAsync(Uri server, string check, string status)
    {
        HealthAnswer answer = null!;
        await farm.WaitForAsync(
            async () =>
            {
                answer = await farm.GetHealthAsync(server, "/health/ready");
                return answer.Checks.TryGetValue(check, out var actual) && actual == status;
            },
            Patience,
            $"{server}health/ready to report {check} {status}",
            () => Task.FromResult(answer?.Body ?? ""));
        Assert.Equal(status == "Healthy" ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable, answer.Status);
        return answer;
    }

    private async Task WaitForReadyAsync(Uri server)
    {
        HealthAnswer answer = null!;
        await farm.WaitForAsync(
            async () => (answer = await farm.GetHealthAsync(server, "/health/ready")).Status == HttpStatusCode.OK,
            Patience,
            $"{server}health/ready to be healthy again",
            () => Task.FromResult(answer?.Body ?? ""));
        Assert.All(answer.Checks.Values, status => Assert.Equal("Healthy", status));
    }

    /// <summary>Runs a helper of <c>$PFILM_TEST_SERVICES_DIR/bin</c> (see docs/testing.md).</summary>
    private static async Task RunHelperAsync(string helper, params string[] arguments)
    {
        var directory = Environment.GetEnvironmentVariable("PFILM_TEST_SERVICES_DIR") ?? throw new InvalidOperationException("PFILM_TEST_SERVICES_DIR is not set: run through ./test.sh");
        var (exitCode, output, error) = await TestEnvironment.RunAsync(Path.Combine(directory, "bin", helper), arguments, timeout: TimeSpan.FromMinutes(2));
        Assert.True(exitCode == 0, $"{helper} {string.Join(' ', arguments)} failed ({exitCode}): {output} {error}");
    }
}
