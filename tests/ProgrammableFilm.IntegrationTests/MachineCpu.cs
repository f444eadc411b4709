using System.Globalization;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// How much of the machine's CPU went to this test's farm and how much to everything else, between two readings of
/// /proc. The farm is this process and its children (the API, the coordinator, the worker processes and their ffmpeg
/// runs), the test PostgreSQL (its postmaster, found by <c>PFILM_TEST_PG_DATA</c>, and its backends) and the test
/// RabbitMQ (the processes started with <c>RABBITMQ_NODENAME</c> = <c>PFILM_TEST_RABBITMQ_NODE</c>). The load average
/// cannot tell the two apart: the farm alone keeps it near 3 on two cores.
/// </summary>
public sealed class MachineCpu
{
    // USER_HZ: 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)).
    private const double TicksPerSecond = 100;

    private readonly long _busy;
    private readonly long _farm;
    private readonly DateTime _at;

    private MachineCpu(long busy, long farm, DateTime at) => (_busy, _farm, _at) = (busy, farm, at);

    public static MachineCpu Read() => new(BusyTicks(), FarmTicks(), DateTime.UtcNow);

    /// <summary>The shares of the machine (all cores over the interval) the farm and everything else used since <paramref name="start"/>.</summary>
    public (double Farm, double Others) Since(MachineCpu start)
    {
        var capacity = (_at - start._at).TotalSeconds * TicksPerSecond * Environment.ProcessorCount;
        var farm = (_farm - start._farm) / capacity;
        return (farm, Math.Max(0, ((_busy - start._busy) / capacity) - farm));
    }

    /// <summary>user + nice + system + irq + softirq + steal over all cores, from the first line of /proc/stat.</summary>
    private static long BusyTicks()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        return fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7];
    }

    /// <summary>
    /// The CPU time of the farm's process trees: each live process's own and its reaped children's (a finished ffmpeg
    /// run counts in its worker, a closed backend in the postmaster).
    /// </summary>
    private static long FarmTicks()
    {
        var processes = new Dictionary<int, (int Parent, long Ticks)>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), CultureInfo.InvariantCulture, out var pid) && Stat(pid) is { } stat)
            {
                processes[pid] = stat;
            }
        }

        var roots = new HashSet<int> { Environment.ProcessId };
        if (Environment.GetEnvironmentVariable("PFILM_TEST_PG_DATA") is { Length: > 0 } data && File.Exists(Path.Combine(data, "postmaster.pid")))
        {
            roots.Add(int.Parse(File.ReadLines(Path.Combine(data, "postmaster.pid")).First(), CultureInfo.InvariantCulture));
        }

        if (Environment.GetEnvironmentVariable("PFILM_TEST_RABBITMQ_NODE") is { Length: > 0 } node)
        {
            roots.UnionWith(processes.Keys.Where(pid => Environ(pid).Contains($"RABBITMQ_NODENAME={node}\0", StringComparison.Ordinal)));
        }

        var children = processes.ToLookup(p => p.Value.Parent, p => p.Key);
        var farm = new HashSet<int>();
        var pending = new Stack<int>(roots.Where(processes.ContainsKey));
        while (pending.TryPop(out var pid))
        {
            if (farm.Add(pid))
            {
                foreach (var child in children[pid])
                {
                    pending.Push(child);
                }
            }
        }

        return farm.Sum(pid => processes[pid].Ticks);
    }

    /// <summary>Parent and utime + stime + cutime + cstime; null for a process that ended meanwhile.</summary>
    private static (int Parent, long Ticks)? Stat(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The name in parentheses may hold spaces: the fields start after its closing parenthesis (field 3, state).
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long Field(int number) => long.Parse(fields[number - 3], CultureInfo.InvariantCulture);
            return ((int)Field(4), Field(14) + Field(15) + Field(16) + Field(17));
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static string Environ(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/environ");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
