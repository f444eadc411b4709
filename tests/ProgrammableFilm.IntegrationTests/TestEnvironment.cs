using System.Diagnostics;
using Npgsql;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The real services <c>./test.sh</c> starts. A missing variable fails the test with instructions rather than
/// skipping it: a suite that silently skips its integration tests proves nothing.
/// </summary>
public static class TestEnvironment
{
    public static string PostgresAdmin => Required("PFILM_TEST_POSTGRES");

    public static string RabbitMq => Required("PFILM_TEST_RABBITMQ");

    public static string Configuration =>
#if DEBUG
        "Debug";
#else
        "Release";
#endif

    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>Creates an empty database for one test class and returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string prefix)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..40];
        await using (var connection = new NpgsqlConnection(PostgresAdmin))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await command.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(PostgresAdmin) { Database = name }.ConnectionString;
    }

    public static string CreateTemporaryFolder(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Runs a program to completion and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string StandardOutput, string StandardError)> RunAsync(string program, IEnumerable<string> arguments, string? workingDirectory = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory ?? RepositoryRoot };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var cancellation = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', start.ArgumentList)} did not finish in time; output so far: {await output} {await error}");
        }

        return (process.ExitCode, await output, await error);
    }

    private static string Required(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException($"{name} is not set: run the integration tests through ./test.sh (or ./test.sh --services-only and export what it prints).");

    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "ProgrammableFilm.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("ProgrammableFilm.sln not found above the test binaries.");
    }
}
