using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The farm as the containers run it: the migration step, the API process and one worker process with its HTTP
/// listener on (<c>Worker__HttpUrls</c>), each started with the environment of <see cref="Environment"/>, on the real
/// PostgreSQL and RabbitMQ. Shared by the metrics and health tests (<see cref="ObservedFarmCollection"/>).
/// </summary>
public sealed class ObservedFarmFixture : IAsyncLifetime
{
    private readonly List<Process> _processes = [];
    private readonly ConcurrentQueue<string> _output = new();

    public Uri Api { get; private set; } = null!;

    public Uri Worker { get; private set; } = null!;

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public string StorageRoot { get; } = TestEnvironment.CreateTemporaryFolder("pfilm-observed");

    public IReadOnlyDictionary<string, string> Environment { get; private set; } = new Dictionary<string, string>();

    /// <summary>An admin key made by the API's <c>create-key</c> verb.</summary>
    public string AdminKey { get; private set; } = "";

    public string Output => string.Join('\n', _output);

    public async Task InitializeAsync()
    {
        Api = new Uri($"http://127.0.0.1:{TestEnvironment.FreePort()}");
        Worker = new Uri($"http://127.0.0.1:{TestEnvironment.FreePort()}");
        Environment = new Dictionary<string, string>
        {
            ["Database__ConnectionString"] = await TestEnvironment.CreateDatabaseAsync("pfilm_obs"),
            ["RabbitMq__Uri"] = TestEnvironment.RabbitMq,
            ["RabbitMq__Prefix"] = $"o{Guid.NewGuid().ToString("N")[..8]}-",
            ["Storage__Root"] = StorageRoot,
            ["Worker__Id"] = "observed-worker",
            ["Worker__DeviceCount"] = "1",
            ["Worker__HttpUrls"] = Worker.ToString(),
            ["Coordinator__PollInterval"] = "00:00:00.250",
        };

        var migrate = Start("ProgrammableFilm.Api", "migrate");
        await migrate.WaitForExitAsync();
        Assert.True(migrate.ExitCode == 0, $"migrate failed:\n{Output}");
        Start("ProgrammableFilm.Api", "--urls", Api.ToString());
        Start("ProgrammableFilm.Worker");
        await WaitForAsync(async () => (await GetHealthAsync(Api, "/health/ready")).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(60), "the API ready");
        await WaitForAsync(async () => (await GetHealthAsync(Worker, "/health/ready")).Status == HttpStatusCode.OK, TimeSpan.FromSeconds(60), "the worker ready");

        // After the API started, as on a new farm: it has said how to make this first key.
        AdminKey = await TestKeys.CreateWithVerbAsync(Environment, "--role", "admin", "--name", "observed farm");
    }

    public async Task DisposeAsync()
    {
        await TestEnvironment.StopAsync(_processes);
        Http.Dispose();
        Directory.Delete(StorageRoot, recursive: true);
    }

    /// <summary>Unpooled: the health tests restart PostgreSQL, which would leave pooled connections broken.</summary>
    public FarmDbContext CreateDbContext() =>
        new(new DbContextOptionsBuilder<FarmDbContext>().UseNpgsql(Environment["Database__ConnectionString"] + ";Pooling=false").Options);

    /// <summary>GET a health endpoint: the status code and each check's status (empty when the process does not answer).</summary>
    public async Task<HealthAnswer> GetHealthAsync(Uri server, string path)
    {
        try
        {
            using var response = await Http.GetAsync(new Uri(server, path));
            var body = await response.Content.ReadAsStringAsync();
            using var json = JsonDocument.Parse(body);
            var checks = json.RootElement.GetProperty("checks").EnumerateObject()
                .ToDictionary(c => c.Name, c => c.Value.GetProperty("status").GetString()!, StringComparer.Ordinal);
            return new HealthAnswer(response.StatusCode, checks, body);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
        {
            return new HealthAnswer(HttpStatusCode.ServiceUnavailable, new Dictionary<string, string>(), e.Message);
        }
    }

    /// <summary>Scrapes <c>/metrics</c>: every sample as (name, labels) → value.</summary>
    public async Task<PrometheusSamples> ScrapeAsync(Uri server) =>
        PrometheusSamples.Parse(await Http.GetStringAsync(new Uri(server, "/metrics")));

    public async Task WaitForAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, Func<Task<string>>? diagnostics = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"{what}: not within {timeout}\n{(diagnostics is null ? "" : await diagnostics())}\n{Output[^Math.Min(Output.Length, 6000)..]}");
            }

            await Task.Delay(250);
        }
    }

    private Process Start(string project, params string[] arguments)
    {
        var process = TestEnvironment.StartProject(project, arguments, Environment, _output, project);
        _processes.Add(process);
        return process;
    }
}

[CollectionDefinition(Name)]
public sealed class ObservedFarmCollection : ICollectionFixture<ObservedFarmFixture>
{
    public const string Name = "observed farm";
}

public sealed record HealthAnswer(HttpStatusCode Status, IReadOnlyDictionary<string, string> Checks, string Body);

/// <summary>The samples of a Prometheus text exposition.</summary>
public sealed class PrometheusSamples(List<(string Name, Dictionary<string, string> Labels, double Value)> samples, string text)
{
    public string Text { get; } = text;

    public static PrometheusSamples Parse(string text)
    {
        var samples = new List<(string, Dictionary<string, string>, double)>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var brace = line.IndexOf('{', StringComparison.Ordinal);
            var close = line.LastIndexOf('}');
            var name = brace >= 0 ? line[..brace] : line[..line.IndexOf(' ', StringComparison.Ordinal)];
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (brace >= 0)
            {
                foreach (var pair in System.Text.RegularExpressions.Regex.Matches(line[(brace + 1)..close], "([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\""))
                {
                    var match = (System.Text.RegularExpressions.Match)pair;
                    labels[match.Groups[1].Value] = match.Groups[2].Value;
                }
            }

            // Lines may end with a timestamp: the value is the first field after the labels.
            var rest = (brace >= 0 ? line[(close + 1)..] : line[name.Length..]).Trim().Split(' ');
            if (double.TryParse(rest[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                samples.Add((name, labels, value));
            }
        }

        return new PrometheusSamples(samples, text);
    }

    public bool Has(string name) => samples.Any(s => s.Name == name);

    /// <summary>The sum of the samples named <paramref name="name"/> whose labels include <paramref name="labels"/>.</summary>
    public double Sum(string name, params (string Key, string Value)[] labels) =>
        samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).Sum(s => s.Value);

    public IEnumerable<Dictionary<string, string>> LabelsOf(string name) => samples.Where(s => s.Name == name).Select(s => s.Labels);
}
