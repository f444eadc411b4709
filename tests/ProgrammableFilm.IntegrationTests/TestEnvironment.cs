using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using ProgrammableFilm.Data;

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

    public static FarmDbContext CreateDbContext(string connectionString) =>
        new(new DbContextOptionsBuilder<FarmDbContext>().UseNpgsql(connectionString).Options);

    /// <summary>A TCP port free on 127.0.0.1 right now, for a process the test starts.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static string CreateTemporaryFolder(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>
    /// Starts a built project (<c>src/{project}/bin/.../{project}.dll</c>) with <c>dotnet</c>; every line it prints goes to
    /// <paramref name="output"/> tagged <c>[tag]</c> (<c>[tag!]</c> for standard error) and to <paramref name="onLine"/>.
    /// </summary>
    public static Process StartProject(string project, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment, ConcurrentQueue<string> output, string tag, Action<string>? onLine = null)
    {
        var dll = Path.Combine(RepositoryRoot, "src", project, "bin", Configuration, "net10.0", $"{project}.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution first");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, line) =>
        {
            if (line.Data is not null)
            {
                output.Enqueue($"[{tag}] {line.Data}");
                onLine?.Invoke(line.Data);
            }
        };
        process.ErrorDataReceived += (_, line) =>
        {
            if (line.Data is not null)
            {
                output.Enqueue($"[{tag}!] {line.Data}");
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>
    /// Starts a worker process (its id, queues and storage in <paramref name="environment"/>) and waits until its bus is
    /// consuming, so that work is spread over every worker started.
    /// </summary>
    public static async Task<Process> StartWorkerAsync(string workerId, IReadOnlyDictionary<string, string> environment, ConcurrentQueue<string> output)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = StartProject("ProgrammableFilm.Worker", [], environment, output, workerId, line =>
        {
            if (line.Contains("Bus started", StringComparison.Ordinal))
            {
                started.TrySetResult();
            }
        });
        var finished = await Task.WhenAny(started.Task, process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.True(finished == started.Task, $"worker {workerId} did not start:\n{string.Join('\n', output)}");
        return process;
    }

    /// <summary>Kills what is still running of <paramref name="processes"/> (with their children) and disposes them all.</summary>
    public static async Task StopAsync(IEnumerable<Process> processes)
    {
        foreach (var process in processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }
    }

    /// <summary>Runs a program to completion and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string StandardOutput, string StandardError)> RunAsync(string program, IEnumerable<string> arguments, string? workingDirectory = null, TimeSpan? timeout = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory ?? RepositoryRoot };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

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
