namespace ProgrammableFilm.Domain.Scheduling;

/// <summary>
/// A Ready task the dispatcher may send, with what its order and placement depend on, and how many tasks like it share
/// a message (<see cref="Bundling"/>): it takes that share of a message of its pool's room.
/// </summary>
public sealed record ReadyTask(Guid Id, string Project, int Lane, int Priority, DateTime CreatedAt, int FirstFrame, string Engine, long MinimumMemoryBytes, int BundleSize = 1);

/// <summary>
/// A pool of live workers as the dispatcher sees it: how many messages it may still queue (a bundle of n attempts is
/// one message, each of its attempts 1/n of it) and what it can run. <paramref name="QueuedByLane"/> is what its queue
/// holds now, by lane: a lane's task is not kept out by the messages of the lanes after it (a preview task queued
/// behind a full queue of batch work would wait for that work to drain before it even reached the broker).
/// </summary>
public sealed record PoolCapacity(string Name, double Room, long MemoryBytes, IReadOnlySet<string>? Engines, IReadOnlyDictionary<int, double>? QueuedByLane = null)
{
    /// <summary>Unknown memory (0: no heartbeat yet) is trusted; an engine list of null means every engine.</summary>
    public bool Fits(ReadyTask task) =>
        (MemoryBytes == 0 || MemoryBytes >= task.MinimumMemoryBytes) && (Engines is null || Engines.Contains(task.Engine));

    /// <summary>The messages queued for lanes after <paramref name="lane"/>: room that a task of that lane still has.</summary>
    public double QueuedAfter(int lane) => QueuedByLane?.Where(q => q.Key > lane).Sum(q => q.Value) ?? 0;

    /// <summary>The room a task of <paramref name="lane"/> has in this pool.</summary>
    public double RoomFor(int lane) => Room + QueuedAfter(lane);
}

/// <summary>
/// The dispatch order: lane first (preview before batch), then fair share between projects, then priority, then age.
/// Fair share is by occupancy: the next task goes to the project with the fewest live attempts (queued or running) per
/// unit of weight, less its <see cref="ShareCredit"/>. Occupancy integrated over time is device time, so two projects
/// with weights 3 and 1 that both keep the fleet busy get 75% and 25% of its device-seconds; a project with nothing
/// Ready takes no share, so the others burst into its slots, and a project with no live attempts always comes first,
/// so none starves.
/// </summary>
public static class FairShare
{
    public const double DefaultWeight = 1.0;

    /// <summary>Below this a pool's room is used up: shares of 1/n summed n times may miss zero by a rounding error.</summary>
    private const double RoomLeft = 1e-9;

    /// <summary>
    /// Picks up to the pools' room from <paramref name="candidates"/> and the pool each goes to: the smallest pool
    /// that fits it (big devices stay free for big work). A task no pool with room can run is skipped this pass.
    /// The candidates are each job's first few Ready tasks; a project in <paramref name="cutShort"/> has more Ready
    /// than it was given. When such a project is next in line with none left, the plan ends there and the rest of the
    /// room waits for the next pass's candidates: giving it to the other projects would cap a project at what one
    /// read lets it have (with two jobs, half of the room, whatever the weights). <paramref name="credit"/> is each
    /// project's <see cref="ShareCredit"/>, counted against its live attempts.
    /// </summary>
    public static IReadOnlyList<(ReadyTask Task, string Pool)> Plan(
        IEnumerable<ReadyTask> candidates,
        IReadOnlyDictionary<string, int> liveByProject,
        IReadOnlyDictionary<string, double> weights,
        IReadOnlyList<PoolCapacity> pools,
        IReadOnlySet<string>? cutShort = null,
        IReadOnlyDictionary<string, double>? credit = null)
    {
        var room = pools.ToDictionary(p => p.Name, p => p.Room, StringComparer.Ordinal);
        var bySize = pools.OrderBy(p => p.MemoryBytes == 0 ? long.MaxValue : p.MemoryBytes).ThenBy(p => p.Name, StringComparer.Ordinal).ToList();
        var occupancy = new Dictionary<string, int>(liveByProject, StringComparer.Ordinal);
        var plan = new List<(ReadyTask, string)>();
        foreach (var lane in candidates.GroupBy(t => t.Lane).OrderBy(g => g.Key))
        {
            var laterLanesQueued = pools.ToDictionary(p => p.Name, p => p.QueuedAfter(lane.Key), StringComparer.Ordinal);
            var queues = lane.GroupBy(t => t.Project, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => new Queue<ReadyTask>(g.OrderByDescending(t => t.Priority).ThenBy(t => t.CreatedAt).ThenBy(t => t.FirstFrame)), StringComparer.Ordinal);
            var emptied = new List<string>();
            var placed = new HashSet<string>(StringComparer.Ordinal);
            while (queues.Count > 0 && room.Any(r => r.Value + laterLanesQueued[r.Key] > RoomLeft))
            {
                var project = queues
                    .OrderBy(q => Rank(q.Key))
                    .ThenByDescending(q => q.Value.Peek().Priority)
                    .ThenBy(q => q.Value.Peek().CreatedAt)
                    .ThenBy(q => q.Key, StringComparer.Ordinal)
                    .First().Key;
                if (emptied.Any(e => Rank(e) <= Rank(project)))
                {
                    return plan;
                }

                var queue = queues[project];
                var task = queue.Dequeue();
                if (bySize.FirstOrDefault(p => room[p.Name] + laterLanesQueued[p.Name] > RoomLeft && p.Fits(task)) is { } pool)
                {
                    room[pool.Name] -= 1.0 / Math.Max(1, task.BundleSize);
                    occupancy[project] = Occupancy(occupancy, project) + 1;
                    plan.Add((task, pool.Name));
                    placed.Add(project);
                }

                // Only a project that placed work this pass holds the rest back: one whose tasks fit no pool with
                // room would hold it back for ever.
                if (queue.Count == 0)
                {
                    queues.Remove(project);
                    if (cutShort?.Contains(project) == true && placed.Contains(project))
                    {
                        emptied.Add(project);
                    }
                }
            }
        }

        return plan;

        double Rank(string project) => Occupancy(occupancy, project) == 0
            ? double.NegativeInfinity
            : (Occupancy(occupancy, project) - (credit?.GetValueOrDefault(project) ?? 0)) / Weight(weights, project);
    }

    private static int Occupancy(Dictionary<string, int> occupancy, string project) => occupancy.GetValueOrDefault(project);

    internal static double Weight(IReadOnlyDictionary<string, double> weights, string project) =>
        weights.TryGetValue(project, out var weight) && weight > 0 ? weight : DefaultWeight;
}

/// <summary>What a task needs from a device, derived from its engine and frame size.</summary>
public static class TaskRequirements
{
    private const long MiB = 1024 * 1024;

    /// <summary>
    /// The least device memory a task can run in: the engine's resident part (the diffusion model's weights and
    /// workspace, or the procedural renderer's buffers) plus its activations, which grow with the frame and the
    /// frames sampled together. An estimate on the safe side; an out-of-memory failure raises it for the next attempt.
    /// </summary>
    public static long MinimumMemoryBytes(string engine, int width, int height, int framesPerBatch)
    {
        var pixels = (long)Math.Max(1, width) * Math.Max(1, height) * Math.Max(1, framesPerBatch);
        return engine == "diffusion" ? (512 * MiB) + (pixels * 256) : (64 * MiB) + (pixels * 16);
    }
}
