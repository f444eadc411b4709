using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Domain.Takes;

/// <summary>
/// One task of a take's graph: planned for this take, or <see cref="ReusedFromTake"/> names the earlier take whose
/// task of the same key renders the same frames (the take depends on it and gets a copy of its frames).
/// </summary>
public sealed record TakeTask(PlannedTask Task, int? ReusedFromTake);

/// <summary>
/// Plans the takes of one shot together so that a frame two takes would render identically is rendered once: a
/// keyframe or segment task whose <see cref="RenderKey"/> equals an earlier take's is planned only in that take.
/// Assembly and interpolation are never shared: each take has its own video, metrics and manifest.
/// </summary>
public static class TakePlanner
{
    /// <summary>Every take's tasks, in take order; index <c>i</c> of the result is take <c>i</c> of <paramref name="takes"/>.</summary>
    public static IReadOnlyList<IReadOnlyList<TakeTask>> Plan(IReadOnlyList<ShotSpec> takes)
    {
        if (takes.Count == 1)
        {
            // Nothing to share: a big shot's tasks are not keyed and hashed one by one for nothing.
            return [[.. ShotPlanner.Plan(takes[0]).Select(task => new TakeTask(task, null))]];
        }

        var owners = new Dictionary<RenderKey, int>();
        var plans = new List<IReadOnlyList<TakeTask>>(takes.Count);
        for (var take = 0; take < takes.Count; take++)
        {
            var plan = new List<TakeTask>();
            foreach (var task in ShotPlanner.Plan(takes[take]))
            {
                if (task.Kind is TaskKind.Assemble or TaskKind.Interpolate)
                {
                    plan.Add(new TakeTask(task, null));
                    continue;
                }

                var key = RenderKey.Of(takes[take], task);
                plan.Add(owners.TryGetValue(key, out var owner) ? new TakeTask(task, owner) : new TakeTask(task, null));
                owners.TryAdd(key, take);
            }

            plans.Add(plan);
        }

        return plans;
    }
}

/// <summary>
/// Everything an engine reads to render a task's frames: two tasks with equal keys produce byte-identical frames
/// (engines are deterministic, and batch size and thread count do not change a frame). A segment's key covers its
/// keyframes too, since they come from the same inputs.
/// </summary>
public readonly record struct RenderKey(
    TaskKind Kind, int FirstFrame, int LastFrame, string Engine, string Prompt, long Seed, int Width, int Height, int TotalFrames, int? Steps, double? Guidance)
{
    public static RenderKey Of(ShotSpec take, PlannedTask task)
    {
        var sampled = EngineInputs.ReadsSampler(take.Engine);
        return new RenderKey(task.Kind, task.Frames[0], task.Frames[^1], take.Engine, take.Prompt, take.Seed, take.Width, take.Height, take.FrameCount,
            sampled ? take.Steps : null, sampled ? take.Guidance : null);
    }
}

/// <summary>Which shot parameters each engine reads.</summary>
public static class EngineInputs
{
    /// <summary>
    /// The procedural engine draws the scene plan and has no sampler: steps and guidance change nothing it renders
    /// (the engine's tests hold it to that), so takes that differ only there share every frame.
    /// </summary>
    public static bool ReadsSampler(string engine) => !string.Equals(engine, "procedural", StringComparison.Ordinal);
}
