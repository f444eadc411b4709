using System.Collections.Concurrent;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The API binary's operator verbs and its start on a database that cannot serve it: one line naming what is wrong and
/// a failing exit code, never a stack trace.
/// </summary>
public sealed class ApiVerbTests
{
    [Fact]
    public async Task Create_key_on_a_database_never_migrated_names_the_missing_step_in_one_line_and_exits_1()
    {
        var database = await TestEnvironment.CreateDatabaseAsync("api_verbs");

        var (exitCode, output) = await RunApiAsync(database, "create-key", "--role", "admin", "--name", "first");

        Assert.Equal(1, exitCode);
        var error = Assert.Single(output, line => line.StartsWith("[api!] ", StringComparison.Ordinal));
        Assert.StartsWith("[api!] pfilm-api: The database lacks migration(s) 0001_initial", error, StringComparison.Ordinal);
        Assert.EndsWith("run the migration step first: dotnet run --project src/ProgrammableFilm.Api -- migrate", error, StringComparison.Ordinal);
        Assert.DoesNotContain(output, line => line.Contains(" at ProgrammableFilm.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_migration_step_with_no_database_listening_says_it_cannot_connect_in_one_line_and_exits_1()
    {
        var nobody = $"Host=127.0.0.1;Port={TestEnvironment.FreePort()};Username=postgres;Database=pfilm;Timeout=3";

        var (exitCode, output) = await RunApiAsync(nobody, "migrate");

        Assert.Equal(1, exitCode);
        var error = Assert.Single(output, line => line.StartsWith("[api!] ", StringComparison.Ordinal));
        Assert.StartsWith("[api!] pfilm-api: Failed to connect to 127.0.0.1:", error, StringComparison.Ordinal);
        Assert.DoesNotContain(output, line => line.Contains(" at Npgsql.", StringComparison.Ordinal));
    }

    private static async Task<(int ExitCode, string[] Output)> RunApiAsync(string database, params string[] arguments)
    {
        var storage = TestEnvironment.CreateTemporaryFolder("pfilm-api-verbs");
        try
        {
            var output = new ConcurrentQueue<string>();
            using var process = TestEnvironment.StartProject(
                "ProgrammableFilm.Api",
                arguments,
                new Dictionary<string, string>(StringComparer.Ordinal) { ["Database__ConnectionString"] = database, ["Storage__Root"] = storage },
                output,
                "api");
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            return (process.ExitCode, [.. output]);
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }
}
