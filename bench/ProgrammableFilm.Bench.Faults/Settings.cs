using System.Globalization;

namespace ProgrammableFilm.Bench.Faults;

/// <summary>The command line and the services bench/faults.sh started.</summary>
public sealed record Settings
{
    public required string Root { get; init; }

    public required IReadOnlyList<string> Scenarios { get; init; }

    /// <summary>Shorter than the coordinator's 30 s default so that a lost-worker scenario takes seconds, not minutes.</summary>
    public TimeSpan Lease { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Per job: past it the job counts as not completed and the scenario moves on.</summary>
    public TimeSpan JobTimeout { get; init; } = TimeSpan.FromSeconds(180);

    public int Workers { get; init; } = 3;

    public int KillMoments { get; init; } = 10;

    /// <summary>Keep the run folder (process logs, rendered shots) instead of deleting it.</summary>
    public bool Keep { get; init; }

    public required string PostgresAdmin { get; init; }

    public required string RabbitMq { get; init; }

    public required int RabbitMqPort { get; init; }

    public required string ServicesDirectory { get; init; }

    public required string CommandLine { get; init; }

    public static Settings Parse(string[] args)
    {
        if (args.Length == 0)
        {
            throw new ArgumentException("usage: ProgrammableFilm.Bench.Faults REPO_ROOT [--scenarios a,b] [--lease SECONDS] [--timeout SECONDS] [--workers N] [--moments N] [--keep]; run it through bench/faults.sh");
        }

        var settings = new Settings
        {
            Root = args[0],
            Scenarios = Scenario.All.Select(s => s.Name).ToList(),
            PostgresAdmin = Required("PFILM_TEST_POSTGRES"),
            RabbitMq = Required("PFILM_TEST_RABBITMQ"),
            RabbitMqPort = int.Parse(Required("PFILM_TEST_RABBITMQ_PORT"), CultureInfo.InvariantCulture),
            ServicesDirectory = Required("PFILM_TEST_SERVICES_DIR"),
            CommandLine = string.Join(' ', ["bench/faults.sh", .. args.Skip(1)]),
        };
        for (var i = 1; i < args.Length; i++)
        {
            var name = args[i];
            if (name == "--keep")
            {
                settings = settings with { Keep = true };
                continue;
            }

            var value = i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value");
            settings = name switch
            {
                "--scenarios" => settings with { Scenarios = ScenarioNames(value) },
                "--lease" => settings with { Lease = TimeSpan.FromSeconds(Positive(name, value)) },
                "--timeout" => settings with { JobTimeout = TimeSpan.FromSeconds(Positive(name, value)) },
                "--workers" => settings with { Workers = (int)Positive(name, value) },
                "--moments" => settings with { KillMoments = (int)Positive(name, value) },
                _ => throw new ArgumentException($"unknown option {name}"),
            };
        }

        return settings;
    }

    private static List<string> ScenarioNames(string value)
    {
        var names = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        var unknown = names.Where(n => Scenario.All.All(s => s.Name != n)).ToList();
        return unknown.Count == 0
            ? names
            : throw new ArgumentException($"unknown scenario(s) {string.Join(", ", unknown)}; known: {string.Join(", ", Scenario.All.Select(s => s.Name))}");
    }

    private static double Positive(string name, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && number > 0
            ? number
            : throw new ArgumentException($"{name} wants a positive number, not '{value}'");

    private static string Required(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
        ? value
        : throw new InvalidOperationException($"{name} is not set; run bench/faults.sh, which starts its own PostgreSQL and RabbitMQ");
}
