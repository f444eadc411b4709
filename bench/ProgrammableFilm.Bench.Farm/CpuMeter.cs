using System.Globalization;
using Npgsql;

namespace ProgrammableFilm.Bench.Farm;

/// <summary>
/// CPU seconds spent by each part of the farm, read from /proc: on a shared two-core machine the wall-clock rate
/// moves with whatever else runs, while the CPU each task costs does not, and it says which part to make cheaper.
/// </summary>
public sealed class CpuMeter
{
    private static readonly double TicksPerSecond = 100;
    private readonly int _postmaster;
    private readonly int? _rabbitMq;
    private readonly IReadOnlyList<int> _workers;

    private CpuMeter(int postmaster, int? rabbitMq, IReadOnlyList<int> workers) => (_postmaster, _rabbitMq, _workers) = (postmaster, rabbitMq, workers);

    public static async Task<CpuMeter> ForAsync(string postgres, string rabbitMqUri, IReadOnlyList<int> workers)
    {
        await using var connection = new NpgsqlConnection(postgres);
        await connection.OpenAsync();
        var backend = Convert.ToInt32(await new NpgsqlCommand("SELECT pg_backend_pid()", connection).ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        var port = new Uri(rabbitMqUri).Port.ToString(CultureInfo.InvariantCulture);
        var rabbit = Processes().FirstOrDefault(pid => Comm(pid) == "beam.smp" && Environ(pid).Contains($"RABBITMQ_NODE_PORT={port}", StringComparer.Ordinal));
        return new CpuMeter(Stat(backend)?.Parent ?? 0, rabbit == 0 ? null : rabbit, workers);
    }

    public Sample Take()
    {
        var postgres = 0.0;
        foreach (var pid in Processes())
        {
            if (Stat(pid) is { } stat && (pid == _postmaster || stat.Parent == _postmaster))
            {
                // The postmaster's children's time includes every backend that has exited.
                postgres += stat.Own + (pid == _postmaster ? stat.Children : 0);
            }
        }

        return new Sample(
            Environment.ProcessId is var self && Stat(self) is { } me ? me.Own : 0,
            _workers.Sum(pid => Stat(pid)?.Own ?? 0),
            postgres,
            _rabbitMq is { } rabbit ? Stat(rabbit)?.Own ?? 0 : double.NaN);
    }

    private static IEnumerable<int> Processes() => Directory.EnumerateDirectories("/proc")
        .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
        .Where(pid => pid > 0);

    private static string Comm(int pid) => ReadProc(pid, "comm").Trim();

    private static string[] Environ(int pid) => ReadProc(pid, "environ").Split('\0');

    /// <summary>A process may exit, or belong to another user, between listing /proc and reading it.</summary>
    private static string ReadProc(int pid, string file)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/{file}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static ProcStat? Stat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            // The command name may hold spaces; the fields after its closing parenthesis do not.
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            double Field(int number) => double.Parse(fields[number - 3], CultureInfo.InvariantCulture) / TicksPerSecond;
            return new ProcStat(int.Parse(fields[1], CultureInfo.InvariantCulture), Field(14) + Field(15), Field(16) + Field(17));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    private sealed record ProcStat(int Parent, double Own, double Children);

    /// <summary>Cumulative CPU seconds of the coordinator (this process), the workers, PostgreSQL and RabbitMQ.</summary>
    public sealed record Sample(double Coordinator, double Workers, double Postgres, double RabbitMq)
    {
        public static Sample operator -(Sample end, Sample start) =>
            new(end.Coordinator - start.Coordinator, end.Workers - start.Workers, end.Postgres - start.Postgres, end.RabbitMq - start.RabbitMq);

        public double Total => Coordinator + Workers + Postgres + (double.IsNaN(RabbitMq) ? 0 : RabbitMq);
    }
}
