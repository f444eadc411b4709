using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Diffusion;
using ProgrammableFilm.Engine.Procedural;
using ProgrammableFilm.Worker;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A worker's start rehearses a task's whole path (claim, render, frame writing, assembly with FFmpeg, report) on a
/// bus of its own, so that its first real tasks find that code compiled; a path that fails says so in the worker's log,
/// stage by stage (a failing engine at its keyframes, a missing encoder at the assembly).
/// </summary>
public sealed class WorkerRehearsalTests
{
    [Fact]
    public async Task A_rehearsal_runs_each_offered_engines_shot_to_its_report_and_leaves_no_folder_behind()
    {
        using var diffusion = new DiffusionEngine(new DiffusionEngineOptions { ModelPath = Path.Combine(TestEnvironment.RepositoryRoot, "models", "pf-scene-v3.safetensors") });
        diffusion.LoadModel();
        var log = new RecordingLogger();
        var foldersBefore = RehearsalFolders();

        await Rehearsal([new ProceduralEngine(), diffusion], log).StartAsync(CancellationToken.None);

        Assert.DoesNotContain(log.Entries, e => e.Level >= LogLevel.Warning);
        var done = Assert.Single(log.Entries, e => e.Level == LogLevel.Information);
        Assert.StartsWith("Rehearsed a task's path (procedural, diffusion: claim, render, assembly, report)", done.Message, StringComparison.Ordinal);
        Assert.Equal(foldersBefore, RehearsalFolders());
    }

    [Fact]
    public async Task An_engine_that_fails_its_rehearsal_is_named_in_a_warning_and_the_other_engines_shot_still_runs()
    {
        var log = new RecordingLogger();

        await Rehearsal([new ProceduralEngine(), new BrokenEngine()], log).StartAsync(CancellationToken.None);

        var warning = Assert.Single(log.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains("keyframe of the diffusion shot failed", warning.Message, StringComparison.Ordinal);
        Assert.Contains("no weights on this test machine", warning.Message, StringComparison.Ordinal);
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Information && e.Message.StartsWith("Rehearsed a task's path (procedural: claim", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_worker_that_cannot_encode_hears_it_from_its_rehearsals_assembly()
    {
        var log = new RecordingLogger();
        var options = new WorkerOptions { WorkerId = "rehearsal-test", Engines = ["procedural"], EncodeInProcess = false, FfmpegPath = "/nonexistent/ffmpeg" };

        await Rehearsal([new ProceduralEngine()], log, options).StartAsync(CancellationToken.None);

        var warning = Assert.Single(log.Entries, e => e.Level == LogLevel.Warning);
        Assert.StartsWith("Rehearsal at start: assemble of the procedural shot failed", warning.Message, StringComparison.Ordinal);
    }

    private static WorkerRehearsal Rehearsal(IRenderEngine[] engines, RecordingLogger log, WorkerOptions? options = null) =>
        new(engines, options ?? new WorkerOptions { WorkerId = "rehearsal-test" }, new StartedLifetime(), log);

    private static string[] RehearsalFolders() =>
        [.. Directory.GetDirectories(Path.GetTempPath(), "pfilm-rehearsal-*").Order(StringComparer.Ordinal)];

    /// <summary>A diffusion engine whose model is missing, as on a worker whose image lacks the weights.</summary>
    private sealed class BrokenEngine : IRenderEngine
    {
        public string Name => "diffusion";

        public Task<RenderResult> RenderAsync(RenderRequest request, IProgress<RenderProgress>? progress, CancellationToken cancellationToken) =>
            throw new FileNotFoundException("no weights on this test machine");
    }

    private sealed class RecordingLogger : ILogger<WorkerRehearsal>
    {
        private readonly List<(LogLevel Level, string Message)> _entries = [];

        public IReadOnlyList<(LogLevel Level, string Message)> Entries
        {
            get
            {
                lock (_entries)
                {
                    return [.. _entries];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_entries)
            {
                _entries.Add((logLevel, formatter(state, exception)));
            }
        }
    }

    private sealed class StartedLifetime : IHostApplicationLifetime
    {
        public CancellationToken ApplicationStarted => CancellationToken.None;

        public CancellationToken ApplicationStopping => CancellationToken.None;

        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void StopApplication()
        {
        }
    }
}
