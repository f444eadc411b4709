using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A farm on the real PostgreSQL and RabbitMQ: the API and coordinator in this process (WebApplicationFactory),
/// and <see cref="WorkerCount"/> workers as separate OS processes. Queues carry a unique prefix and the database is
/// fresh, so nothing leaks between fixtures.
/// </summary>
public class FarmFixture : IAsyncLifetime
{
    private readonly List<Process> _workers = [];
    private readonly ConcurrentQueue<string> _workerOutput = new();

    protected virtual int WorkerCount => 2;

    /// <summary>Settings every worker process gets besides its id, queues and storage (keys such as <c>Worker__Slots</c>).</summary>
    protected virtual IReadOnlyDictionary<string, string> WorkerSettings => new Dictionary<string, string>();

    /// <summary>Settings a subclass adds to or overrides on the API host (configuration keys such as <c>Coordinator:RepublishAfter</c>).</summary>
    protected virtual IReadOnlyDictionary<string, string> ExtraSettings => new Dictionary<string, string>();

    public WebApplicationFactory<Program> Api { get; private set; } = null!;

    /// <summary>Replaces API host services after the app registered its own (for example a fake clock).</summary>
    protected virtual void ConfigureServices(IServiceCollection services)
    {
    }

    public HttpClient Http { get; private set; } = null!;

    public string ConnectionString { get; private set; } = "";

    /// <summary>The farm-wide admin key <see cref="Http"/> sends.</summary>
    public string AdminKey { get; private set; } = "";

    public string StorageRoot { get; } = TestEnvironment.CreateTemporaryFolder("pfilm-storage");

    public string QueuePrefix { get; } = $"t{Guid.NewGuid().ToString("N")[..8]}-";

    public string WorkerOutput => string.Join('\n', _workerOutput);

    public async Task InitializeAsync()
    {
        ConnectionString = await TestEnvironment.CreateDatabaseAsync("pfilm_it");
        await MigrateAsync();
        AdminKey = await TestKeys.CreateAsync(ConnectionString);
        Api = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            builder.UseSetting("Database:Provider", "postgres");
            builder.UseSetting("Database:ConnectionString", ConnectionString);
            builder.UseSetting("RabbitMq:Uri", TestEnvironment.RabbitMq);
            builder.UseSetting("RabbitMq:Prefix", QueuePrefix);
            builder.UseSetting("Storage:Root", StorageRoot);
            builder.UseSetting("Coordinator:PollInterval", "00:00:00.250");
            // The suite starts a farm per class: their planning warm-ups would take a core from the tests at each
            // start. PlanningWarmUpTests turns it on for its own farm.
            builder.UseSetting("Coordinator:PlanningWarmUpTasks", "0");
            foreach (var (key, value) in ExtraSettings)
            {
                builder.UseSetting(key, value);
            }

            builder.ConfigureTestServices(ConfigureServices);
        });
        Http = Api.CreateClient().WithKey(AdminKey);
        for (var i = 0; i < WorkerCount; i++)
        {
            await StartWorkerAsync($"worker-{(char)('a' + i)}");
        }
    }

    public async Task DisposeAsync()
    {
        await TestEnvironment.StopAsync(_workers);
        Http.Dispose();
        await Api.DisposeAsync();
        Directory.Delete(StorageRoot, recursive: true);
    }

    public FarmDbContext CreateDbContext() =>
        TestEnvironment.CreateDbContext(ConnectionString);

    private async Task MigrateAsync()
    {
        var services = new ServiceCollection().AddFarmData(new DatabaseOptions(DatabaseProvider.Postgres, ConnectionString)).BuildServiceProvider();
        await using (services)
        {
            await services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
        }
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
            ["Logging__LogLevel__Default"] = "Information",
        };
        foreach (var (key, value) in WorkerSettings)
        {
            environment[key] = value;
        }

        _workers.Add(await TestEnvironment.StartWorkerAsync(workerId, environment, _workerOutput));
    }
}
