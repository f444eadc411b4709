using System.Diagnostics;

namespace ProgrammableFilm.Bench.Faults;

/// <summary>One farm process (<c>dotnet X.dll</c>), its output in a log file, and a signal when it is ready.</summary>
public sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly TextWriter _log;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(Process process, TextWriter log)
    {
        _process = process;
        _log = log;
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Completes when the process prints <c>readyLine</c>; fails if it exits first.</summary>
    public Task Ready => _ready.Task;

    /// <summary>Completes when the process has exited, however it ended.</summary>
    public Task Exited => _exited.Task;

    public static ChildProcess Start(string dll, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment, string logPath, string? readyLine)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var log = TextWriter.Synchronized(new StreamWriter(logPath, append: true) { AutoFlush = true });
        var child = new ChildProcess(new Process { StartInfo = start, EnableRaisingEvents = true }, log);
        child._process.OutputDataReceived += (_, line) =>
        {
            if (line.Data is null)
            {
                return;
            }

            log.WriteLine(line.Data);
            if (readyLine is not null && line.Data.Contains(readyLine, StringComparison.Ordinal))
            {
                child._ready.TrySetResult();
            }
        };
        child._process.ErrorDataReceived += (_, line) =>
        {
            if (line.Data is not null)
            {
                log.WriteLine(line.Data);
            }
        };
        child._process.Exited += (_, _) =>
        {
            child._ready.TrySetException(new InvalidOperationException($"{Path.GetFileName(dll)} exited before it was ready; see {logPath}"));
            child._exited.TrySetResult();
        };
        child._process.Start();
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        if (readyLine is null)
        {
            child._ready.TrySetResult();
        }

        return child;
    }

    /// <summary>SIGKILL to this one process: no shutdown hook runs, exactly as when a machine dies.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: false);
        }

        await _process.WaitForExitAsync();
    }

    public Task WaitForExitAsync(CancellationToken cancellationToken) => _process.WaitForExitAsync(cancellationToken);

    public void Dispose()
    {
        // Teardown, unlike a fault, takes children too (an ffmpeg the worker started).
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
        _log.Dispose();
    }
}
