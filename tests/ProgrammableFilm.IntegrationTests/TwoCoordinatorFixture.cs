using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// Two coordinator/API processes on one database and one broker prefix (two replicas of the deployment, started
/// together), and two worker processes; every process is started the way the README starts it.
/// </summary>
public sealed class TwoCoordinatorFixture : IAsyncLifetime
{
    private readonly List<Process> _processes = [];
    private readonly ConcurrentQueue<string> _output = new();
    private Dictionary<string, string> _environment = [];

    public HttpClient First { get; } = new();

    public HttpClient Second { get; } = new();

    public string ConnectionString { get; private set; } = "";

    public string StorageRoot { get; } = TestEnvironment.CreateTemporaryFolder("pfilm-two-coordinators");

    public string Output => string.Join('\n', _output.TakeLast(300));

    public IReadOnlyList<Process> Coordinators => [.. _processes.Where((_, i) => i < 2)];

    public async Task InitializeAsync()
    {
        ConnectionString = await TestEnvironment.CreateDatabaseAsync("pfilm_two");
        _environment = new Dictionary<string, string>
        {
            ["Database__ConnectionString"] = ConnectionString,
            ["RabbitMq__Uri"] = TestEnvironment.RabbitMq,
            ["RabbitMq__Prefix"] = $"c{Guid.NewGuid().ToString("N")[..8]}-",
            ["Storage__Root"] = StorageRoot,
            ["Coordinator__PollInterval"] = "00:00:00.250",
            ["Coordinator__LeaseDuration"] = FaultFarmFixture.LeaseDuration.ToString(),
            ["Coordinator__SweepInterval"] = FaultFarmFixture.SweepInterval.ToString(),
            ["Coordinator__RepublishAfter"] = FaultFarmFixture.RepublishAfter.ToString(),
            ["Worker__HeartbeatInterval"] = "00:00:01",
            ["Worker__DeviceCount"] = "1",
        };

        // One migration step before the services start, as in the deployment; then both replicas at once.
        var migrate = TestEnvironment.StartProject("ProgrammableFilm.Api", ["migrate"], _environment, _output, "migrate");
        await migrate.WaitForExitAsync();
        Assert.True(migrate.ExitCode == 0, $"migrate failed:\n{Output}");
        migrate.Dispose();
        var adminKey = await TestKeys.CreateAsync(ConnectionString);
        First.WithKey(adminKey);
        Second.WithKey(adminKey);

        First.BaseAddress = new Uri($"http://127.0.0.1:{TestEnvironment.FreePort()}");
        Second.BaseAddress = new Uri($"http://127.0.0.1:{TestEnvironment.FreePort()}");
        Start("ProgrammableFilm.Api", "coordinator-1", [], ["--urls", First.BaseAddress.ToString()]);
        Start("ProgrammableFilm.Api", "coordinator-2", [], ["--urls", Second.BaseAddress.ToString()]);
        await Task.WhenAll(WaitHealthyAsync(First), WaitHealthyAsync(Second));

        foreach (var workerId in new[] { "worker-1", "worker-2" })
        {
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var worker = Start("ProgrammableFilm.Worker", workerId, new() { ["Worker__Id"] = workerId }, [], line =>
            {
                if (line.Contains("Bus started", StringComparison.Ordinal))
                {
                    started.TrySetResult();
                }
            });
            var finished = await Task.WhenAny(started.Task, worker.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(60)));
            Assert.True(finished == started.Task, $"{workerId} did not start:\n{Output}");
        }
    }

    public async Task DisposeAsync()
    {
        await TestEnvironment.StopAsync(_processes);
        First.Dispose();
        Second.Dispose();
        Directory.Delete(StorageRoot, recursive: true);
    }

    public FarmDbContext CreateDbContext() =>
        TestEnvironment.CreateDbContext(ConnectionString);

    private Process Start(string project, string tag, Dictionary<string, string> extra, string[] arguments, Action<string>? onLine = null)
    {
        var environment = new Dictionary<string, string>(_environment);
        foreach (var (key, value) in extra)
        {
            environment[key] = value;
        }

        var process = TestEnvironment.StartProject(project, arguments, environment, _output, tag, onLine);
        _processes.Add(process);
        return process;
    }

    private async Task WaitHealthyAsync(HttpClient http)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            try
            {
                if ((await http.GetAsync("/healthz")).StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.True(DateTime.UtcNow < deadline, $"{http.BaseAddress} did not come up:\n{Output}");
            Assert.True(_processes.Take(2).All(p => !p.HasExited), $"a coordinator exited at start-up:\n{Output}");
            await Task.Delay(250);
        }
    }
}
