using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A coordinator killed while Hangfire's scheduler held a recurring job's lock leaves that lock in the database until
/// it expires; the coordinator started in its place must come up anyway (it used to wait 15 s for the lock in its
/// start and die: bench/faults.sh, kill-api) and register its schedule once the lock is gone.
/// </summary>
public sealed class CoordinatorRestartTests
{
    [Fact]
    public async Task A_coordinator_starts_while_a_dead_one_holds_a_recurring_jobs_lock_and_registers_its_schedule_after()
    {
        var connectionString = await TestEnvironment.CreateDatabaseAsync("pfilm_restart");
        var services = new ServiceCollection().AddFarmData(new DatabaseOptions(DatabaseProvider.Postgres, connectionString)).BuildServiceProvider();
        await using (services)
        {
            await services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
        }

        var storage = TestEnvironment.CreateTemporaryFolder("pfilm-restart");
        var prefix = $"r{Guid.NewGuid().ToString("N")[..8]}-";
        await using var gate = new NpgsqlConnection(connectionString);
        await gate.OpenAsync();
        try
        {
            await using (var first = Coordinator(connectionString, storage, prefix, sweepSeconds: 1))
            {
                using var http = first.CreateClient();
                await WaitForAsync(gate, "SELECT value FROM hangfire.hash WHERE key = 'recurring-job:lease-sweep' AND field = 'Cron'", "*/1 * * * * *");
            }

            // What the killed coordinator's scheduler leaves behind: the lock row of a job it was triggering.
            await ExecuteAsync(gate, "INSERT INTO hangfire.lock (resource, acquired) VALUES ('hangfire:lock:recurring-job:lease-sweep', now())");

            await using var second = Coordinator(connectionString, storage, prefix, sweepSeconds: 2);
            using var client = second.CreateClient();
            using (var live = await client.GetAsync("/health/live"))
            {
                Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            }

            Assert.Equal("*/1 * * * * *", await ScalarAsync(gate, "SELECT value FROM hangfire.hash WHERE key = 'recurring-job:lease-sweep' AND field = 'Cron'"));
            await ExecuteAsync(gate, "DELETE FROM hangfire.lock WHERE resource = 'hangfire:lock:recurring-job:lease-sweep'");
            await WaitForAsync(gate, "SELECT value FROM hangfire.hash WHERE key = 'recurring-job:lease-sweep' AND field = 'Cron'", "*/2 * * * * *");
            using (var stillLive = await client.GetAsync("/health/live"))
            {
                Assert.Equal(HttpStatusCode.OK, stillLive.StatusCode);
            }
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    private static WebApplicationFactory<Program> Coordinator(string connectionString, string storage, string prefix, int sweepSeconds) =>
        new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            builder.UseSetting("Database:Provider", "postgres");
            builder.UseSetting("Database:ConnectionString", connectionString);
            builder.UseSetting("RabbitMq:Uri", TestEnvironment.RabbitMq);
            builder.UseSetting("RabbitMq:Prefix", prefix);
            builder.UseSetting("Storage:Root", storage);
            builder.UseSetting("Coordinator:SweepInterval", TimeSpan.FromSeconds(sweepSeconds).ToString());
        });

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<string?> ScalarAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (await command.ExecuteScalarAsync()) as string;
    }

    private static async Task WaitForAsync(NpgsqlConnection connection, string sql, string expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string? value;
        while ((value = await ScalarAsync(connection, sql)) != expected)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{sql}: {value ?? "no row"} after 60 s, expected {expected}");
            await Task.Delay(200);
        }
    }
}
