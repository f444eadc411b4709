using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace ProgrammableFilm.Bench.Faults;

/// <summary>
/// One farm as the README starts it: the migration step, one API process (coordinator + API) and worker processes, each
/// configured by environment variables, on its own database and queue prefix. A scenario that leaves a farm in an
/// unknown state gets the next scenario a new one, so that one failure does not spill into the rest of the table.
/// </summary>
public sealed class Farm : IDisposable
{
    private readonly Settings _settings;
    private readonly string _logs;
    private readonly int _generation;
    private readonly Dictionary<string, string> _environment;
    private readonly Dictionary<string, ChildProcess> _workers = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private ChildProcess? _api;
    private int _workersStarted;
    private bool _disposed;

    private Farm(Settings settings, string logs, int generation, string database, string storage, bool duplicateDelivery)
    {
        _settings = settings;
        _logs = logs;
        _generation = generation;
        Database = database;
        Api = new Uri($"http://127.0.0.1:{FreePort()}");
        DuplicateDelivery = duplicateDelivery;
        _environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Database__ConnectionString"] = database,
            ["RabbitMq__Uri"] = settings.RabbitMq,
            ["RabbitMq__Prefix"] = $"faults{generation}-",
            ["Storage__Root"] = storage,
            ["Coordinator__LeaseDuration"] = settings.Lease.ToString("c", CultureInfo.InvariantCulture),
            ["Worker__HeartbeatInterval"] = settings.Heartbeat.ToString("c", CultureInfo.InvariantCulture),
            ["Worker__DeviceCount"] = "1",
            ["Worker__Slots"] = "1",
            ["Faults__DuplicateDelivery"] = duplicateDelivery ? "true" : "false",
        };
    }

    public Uri Api { get; }

    /// <summary>The admin key the script's requests send.</summary>
    public string AdminKey { get; private set; } = "";

    public string Database { get; }

    public bool DuplicateDelivery { get; }

    /// <summary>Set by a scenario that may have left stuck work or a half-broken process behind.</summary>
    public bool Dirty { get; set; }

    public IReadOnlyList<string> WorkerIds
    {
        get
        {
            lock (_lock)
            {
                return [.. _workers.Keys];
            }
        }
    }

    public static async Task<Farm> StartAsync(Settings settings, string runFolder, int generation, string database, bool duplicateDelivery, CancellationToken cancellationToken)
    {
        var logs = Directory.CreateDirectory(Path.Combine(runFolder, "logs")).FullName;
        var storage = Directory.CreateDirectory(Path.Combine(runFolder, "storage")).FullName;
        var farm = new Farm(settings, logs, generation, database, storage, duplicateDelivery);
        try
        {
            using var migrate = farm.Start("ProgrammableFilm.Api", ["migrate"], $"g{generation}-migrate", null);
            await migrate.WaitForExitAsync(cancellationToken);
            if (migrate.ExitCode != 0)
            {
                throw new InvalidOperationException($"the migration step failed; see {farm._logs}/g{generation}-migrate.log");
            }

            // The API needs a key (issue 11): an admin key made by the API's own verb, as the README says.
            using (var createKey = farm.Start("ProgrammableFilm.Api", ["create-key", "--role", "admin", "--name", "faults"], $"g{generation}-create-key", null))
            {
                await createKey.WaitForExitAsync(cancellationToken);
            }

            farm.AdminKey = File.ReadLines(Path.Combine(farm._logs, $"g{generation}-create-key.log")).FirstOrDefault(l => l.StartsWith("pf_", StringComparison.Ordinal))
                ?? throw new InvalidOperationException($"create-key printed no key; see {farm._logs}/g{generation}-create-key.log");
            await farm.StartApiAsync(cancellationToken);
            await Task.WhenAll(Enumerable.Range(0, settings.Workers).Select(_ => farm.StartWorkerAsync(cancellationToken)));
            return farm;
        }
        catch
        {
            farm.Dispose();
            throw;
        }
    }

    /// <summary>Starts the API process and waits until <c>/healthz</c> answers.</summary>
    public async Task StartApiAsync(CancellationToken cancellationToken)
    {
        var api = Start("ProgrammableFilm.Api", ["--urls", Api.ToString()], $"g{_generation}-api", null);
        lock (_lock)
        {
            _api = api;
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (api.HasExited)
            {
                throw new InvalidOperationException($"the API exited (code {api.ExitCode}); see {_logs}/g{_generation}-api.log");
            }

            try
            {
                if ((await http.GetAsync(new Uri(Api, "/healthz"), cancellationToken)).StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the API did not answer /healthz in 60 s; see {_logs}/g{_generation}-api.log");
            }

            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>kill -9 of the API process; returns when it is gone.</summary>
    public async Task KillApiAsync()
    {
        ChildProcess api;
        lock (_lock)
        {
            api = _api ?? throw new InvalidOperationException("the API is not running");
            _api = null;
        }

        await api.KillAsync();
        api.Dispose();
    }

    /// <summary>Starts a worker with a new id and waits until its bus is connected; returns its id.</summary>
    public async Task<string> StartWorkerAsync(CancellationToken cancellationToken)
    {
        var id = $"g{_generation}-w{Interlocked.Increment(ref _workersStarted)}";
        await StartWorker(id).Ready.WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
        return id;
    }

    /// <summary>
    /// Starts the worker process and, as a container's restart policy would, starts it again under the same id when it
    /// exits on its own (a worker whose bus went deaf ends itself for that); a worker the script kills is removed first.
    /// </summary>
    private ChildProcess StartWorker(string id)
    {
        var worker = Start("ProgrammableFilm.Worker", [], id, "Bus started", new Dictionary<string, string>(StringComparer.Ordinal) { ["Worker__Id"] = id });
        lock (_lock)
        {
            _workers[id] = worker;
        }

        _ = RestartWhenItExitsAsync(id, worker);
        return worker;
    }

    private async Task RestartWhenItExitsAsync(string id, ChildProcess worker)
    {
        await worker.Exited;
        lock (_lock)
        {
            if (_disposed || !_workers.TryGetValue(id, out var current) || current != worker)
            {
                return;
            }
        }

        Log.Line($"worker {id} exited on its own (code {worker.ExitCode}); starting it again in a second");
        worker.Dispose();
        await Task.Delay(TimeSpan.FromSeconds(1));
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
        }

        StartWorker(id);
    }

    public bool HasWorker(string? id)
    {
        lock (_lock)
        {
            return id is not null && _workers.ContainsKey(id);
        }
    }

    public int WorkerPid(string id)
    {
        lock (_lock)
        {
            return _workers[id].Id;
        }
    }

    /// <summary>kill -9 of one worker by its process id; returns the moment of the kill.</summary>
    public async Task<DateTime> KillWorkerAsync(string id)
    {
        ChildProcess worker;
        lock (_lock)
        {
            worker = _workers[id];
            _workers.Remove(id);
        }

        var killedAt = DateTime.UtcNow;
        await worker.KillAsync();
        worker.Dispose();
        return killedAt;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _api?.Dispose();
            foreach (var worker in _workers.Values)
            {
                worker.Dispose();
            }

            _workers.Clear();
        }
    }

    private ChildProcess Start(string project, string[] arguments, string name, string? readyLine, IReadOnlyDictionary<string, string>? extra = null)
    {
        var dll = Path.Combine(_settings.Root, "src", project, "bin", "Release", "net10.0", $"{project}.dll");
        var environment = new Dictionary<string, string>(_environment, StringComparer.Ordinal);
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
        {
            environment[key] = value;
        }

        return ChildProcess.Start(dll, arguments, environment, Path.Combine(_logs, $"{name}.log"), readyLine);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
