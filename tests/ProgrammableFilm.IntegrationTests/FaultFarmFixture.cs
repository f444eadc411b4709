using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A farm for fault tests: the API and coordinator in this process with short leases and sweeps, and two worker
/// processes that a test may kill by PID (and that are replaced, under new ids, before the next test). Fresh
/// database and queue prefix, as in <see cref="FarmFixture"/>.
/// </summary>
public sealed class FaultFarmFixture : IAsyncLifetime
{
    /// <summary>Short enough that a lost worker is noticed within seconds, long enough to survive a busy machine.</summary>
    public static readonly TimeSpan LeaseDuration = TimeSpan.FromSeconds(6);

    public static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(1);

    public static readonly TimeSpan RepublishAfter = TimeSpan.FromSeconds(5);

    private const int WorkerCount = 2;
    private readonly ConcurrentDictionary<string, Process> _workers = new(StringComparer.Ordinal);
    private readonly List<Process> _allWorkers = [];
    private readonly ConcurrentQueue<string> _output = new();
    private int _started;

    public WebApplicationFactory<Program> Api { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public string ConnectionString { get; private set; } = "";

    public string StorageRoot { get; } = TestEnvironment.CreateTemporaryFolder("pfilm-fault");

    public string QueuePrefix { get; } = $"f{Guid.NewGuid().ToString("N")[..8]}-";

    /// <summary>The last lines the worker processes printed, tagged with their ids, stack frames left out, for failure messages.</summary>
    public string WorkerOutput => string.Join('\n', _output.Where(line => !line.Split("] ", 2)[^1].TrimStart().StartsWith("at ", StringComparison.Ordinal)).TakeLast(300));

    /// <summary>The ids of the worker processes alive now.</summary>
    public IReadOnlyCollection<string> LiveWorkers => [.. _workers.Where(w => !w.Value.HasExited).Select(w => w.Key).Order(StringComparer.Ordinal)];

    public async Task InitializeAsync()
    {
        ConnectionString = await TestEnvironment.CreateDatabaseAsync("pfilm_fault");
        var services = new ServiceCollection().AddFarmData(new DatabaseOptions(DatabaseProvider.Postgres, ConnectionString)).BuildServiceProvider();
        await using (services)
        {
            await services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
        }

        Api = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            builder.UseSetting("Database:Provider", "postgres");
            builder.UseSetting("Database:ConnectionString", ConnectionString);
            builder.UseSetting("RabbitMq:Uri", TestEnvironment.RabbitMq);
            builder.UseSetting("RabbitMq:Prefix", QueuePrefix);
            builder.UseSetting("Storage:Root", StorageRoot);
            builder.UseSetting("Coordinator:PollInterval", "00:00:00.250");
            builder.UseSetting("Coordinator:LeaseDuration", LeaseDuration.ToString());
            builder.UseSetting("Coordinator:SweepInterval", SweepInterval.ToString());
            builder.UseSetting("Coordinator:RepublishAfter", RepublishAfter.ToString());
        });
        Http = Api.CreateClient().WithKey(await TestKeys.CreateAsync(ConnectionString));
        await EnsureWorkersAsync();
    }

    public async Task DisposeAsync()
    {
        await TestEnvironment.StopAsync(_allWorkers);
        Http.Dispose();
        await Api.DisposeAsync();
        Directory.Delete(StorageRoot, recursive: true);
    }

    public FarmDbContext CreateDbContext() =>
        TestEnvironment.CreateDbContext(ConnectionString);

    /// <summary>Starts workers (under ids never used before) until two are alive.</summary>
    public async Task EnsureWorkersAsync()
    {
        while (LiveWorkers.Count < WorkerCount)
        {
            await StartWorkerAsync($"worker-{(char)('a' + _started++)}");
        }
    }

    /// <summary>SIGKILL on that one process: no shutdown, no last report, its heartbeats just stop.</summary>
    public void KillWorker(string workerId)
    {
        var process = _workers[workerId];
        process.Kill(entireProcessTree: false);
        process.WaitForExit();
    }

    /// <summary>Runs one of the helpers in <c>$PFILM_TEST_SERVICES_DIR/bin</c> (pg-stop, rabbitmqctl, ...) to completion.</summary>
    public static async Task RunServiceHelperAsync(string helper, params string[] arguments)
    {
        var directory = Environment.GetEnvironmentVariable("PFILM_TEST_SERVICES_DIR");
        Assert.False(string.IsNullOrEmpty(directory), "PFILM_TEST_SERVICES_DIR is not set: run the fault tests through ./test.sh");
        var (exitCode, output, error) = await TestEnvironment.RunAsync(Path.Combine(directory, "bin", helper), arguments, timeout: TimeSpan.FromMinutes(1));
        Assert.True(exitCode == 0, $"{helper} {string.Join(' ', arguments)} failed ({exitCode}): {output} {error}");
    }

    /// <summary>Starts a worker process and waits until its bus is consuming, so work is spread over all workers.</summary>
    private async Task StartWorkerAsync(string workerId)
    {
        var environment = new Dictionary<string, string>
        {
            ["RabbitMq__Uri"] = TestEnvironment.RabbitMq,
            ["RabbitMq__Prefix"] = QueuePrefix,
            ["Storage__Root"] = StorageRoot,
            ["Worker__Id"] = workerId,
            ["Worker__DeviceCount"] = "1",
            ["Worker__HeartbeatInterval"] = "00:00:01",
            ["Logging__LogLevel__Default"] = "Information",
        };
        var process = await TestEnvironment.StartWorkerAsync(workerId, environment, _output);
        _allWorkers.Add(process);
        _workers[workerId] = process;
    }
}
