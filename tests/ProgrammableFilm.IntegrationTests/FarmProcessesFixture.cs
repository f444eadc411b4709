using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The farm exactly as the README starts it: the migration step, the API process and a worker process, each with
/// its one command, on the real PostgreSQL and RabbitMQ. The worker is given a model path that does not exist, so
/// that a diffusion shot fails the way a broken GPU node would.
/// </summary>
public sealed class FarmProcessesFixture : IAsyncLifetime
{
    private readonly List<Process> _processes = [];
    private Process _api = null!;
    private readonly ConcurrentQueue<string> _output = new();
    private Dictionary<string, string> _environment = [];

    public Uri Server { get; private set; } = null!;

    public string StorageRoot { get; } = TestEnvironment.CreateTemporaryFolder("pfilm-farm-processes");

    public string Output => string.Join('\n', _output);

    /// <summary>An admin key made by the API's <c>create-key</c> verb, as the README says.</summary>
    public string AdminKey { get; private set; } = "";

    public string ConnectionString => _environment["Database__ConnectionString"];

    public async Task InitializeAsync()
    {
        var port = TestEnvironment.FreePort();
        Server = new Uri($"http://127.0.0.1:{port}");
        _environment = new Dictionary<string, string>
        {
            ["Database__ConnectionString"] = await TestEnvironment.CreateDatabaseAsync("pfilm_proc"),
            ["RabbitMq__Uri"] = TestEnvironment.RabbitMq,
            ["RabbitMq__Prefix"] = $"p{Guid.NewGuid().ToString("N")[..8]}-",
            ["Storage__Root"] = StorageRoot,
            ["Worker__Id"] = "farm-worker",
            ["Worker__ModelPath"] = Path.Combine(StorageRoot, "no-such-model.safetensors"),
        };

        var migrate = Start("ProgrammableFilm.Api", "migrate");
        await migrate.WaitForExitAsync();
        Assert.True(migrate.ExitCode == 0, $"migrate failed:\n{Output}");
        AdminKey = await TestKeys.CreateWithVerbAsync(_environment, "--role", "admin", "--name", "cli tests");

        _api = Start("ProgrammableFilm.Api", "--urls", Server.ToString());
        Start("ProgrammableFilm.Worker");
        await WaitForApiAsync();
    }

    /// <summary>Kills the API process, as a node failure or a rolling deploy would, and starts it again.</summary>
    public async Task RestartApiAsync()
    {
        _api.Kill(entireProcessTree: true);
        await _api.WaitForExitAsync();
        _api = Start("ProgrammableFilm.Api", "--urls", Server.ToString());
        await WaitForApiAsync();
    }

    private async Task WaitForApiAsync()
    {
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                if ((await http.GetAsync(new Uri(Server, "/healthz"))).StatusCode == HttpStatusCode.OK)
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.True(DateTime.UtcNow < deadline, $"the API did not come up:\n{Output}");
            await Task.Delay(250);
        }
    }

    public async Task DisposeAsync()
    {
        await TestEnvironment.StopAsync(_processes);
        Directory.Delete(StorageRoot, recursive: true);
    }

    private Process Start(string project, params string[] arguments)
    {
        var process = TestEnvironment.StartProject(project, arguments, _environment, _output, project);
        _processes.Add(process);
        return process;
    }
}
