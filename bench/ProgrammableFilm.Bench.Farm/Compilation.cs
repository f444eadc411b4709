namespace ProgrammableFilm.Bench.Farm;

/// <summary>
/// Warms a freshly started coordinator the way hours of work would: tiered compilation promotes a method to optimised
/// code after 30 calls, so a per-job path keeps compiling for about 30 jobs, on the cores being measured.
/// </summary>
public static class Compilation
{
    /// <summary>
    /// Runs <paramref name="run"/> (given its 1-based number) until one run compiles at most
    /// <paramref name="settledCompilations"/> methods, or <paramref name="maxRuns"/> times; returns the runs made.
    /// </summary>
    public static async Task<int> WarmUntilSettledAsync(Func<int, Task> run, int settledCompilations, int maxRuns)
    {
        var runs = 0;
        for (var compiled = long.MaxValue; compiled > settledCompilations && runs < maxRuns;)
        {
            var before = System.Runtime.JitInfo.GetCompiledMethodCount();
            await run(++runs);
            compiled = System.Runtime.JitInfo.GetCompiledMethodCount() - before;
        }

        return runs;
    }
}
