using System.Collections.Concurrent;
using ProgrammableFilm.Contracts;

namespace ProgrammableFilm.Worker;

/// <summary>The attempts this worker holds right now: what its heartbeats report and what the coordinator can stop.</summary>
public sealed class RunningAttempts(TimeProvider time)
{
    private readonly ConcurrentDictionary<Guid, RunningAttempt> _attempts = new();

    /// <summary>Registers the attempt; null if this worker already runs it (a duplicated message granted twice).</summary>
    public RunningAttempt? TryStart(Guid attemptId, int deviceCount, CancellationToken workerStopping)
    {
        var attempt = new RunningAttempt(attemptId, deviceCount, time, workerStopping);
        if (_attempts.TryAdd(attemptId, attempt))
        {
            return attempt;
        }

        attempt.Dispose();
        return null;
    }

    public void Remove(RunningAttempt attempt)
    {
        _attempts.TryRemove(attempt.AttemptId, out _);
        attempt.Dispose();
    }

    public IReadOnlyCollection<RunningAttempt> Snapshot() => [.. _attempts.Values];

    /// <summary>Stops an attempt between sampler steps (the coordinator says it is no longer current).</summary>
    public void Stop(Guid attemptId, string reason)
    {
        if (_attempts.TryGetValue(attemptId, out var attempt))
        {
            attempt.Stop(reason);
        }
    }
}

/// <summary>The worker's render slots: a claimed attempt renders once it holds one.</summary>
public sealed class RenderSlots(int slots) : IDisposable
{
    private readonly SemaphoreSlim _free = new(slots, slots);

    public Task WaitAsync(CancellationToken cancellationToken) => _free.WaitAsync(cancellationToken);

    public void Release() => _free.Release();

    public void Dispose() => _free.Dispose();
}

/// <summary>One attempt in progress: its cancellation, progress, device time and log.</summary>
public sealed class RunningAttempt : IDisposable
{
    private const int MaxUnsentLines = 500;
    private readonly TimeProvider _time;
    private long? _rendering;
    private readonly int _deviceCount;
    private readonly CancellationTokenSource _stop;
    private readonly List<AttemptLogEntry> _unsent = [];
    private readonly Lock _gate = new();
    private int _nextSeq = 1;
    private int _dropped;

    internal RunningAttempt(Guid attemptId, int deviceCount, TimeProvider time, CancellationToken workerStopping)
    {
        AttemptId = attemptId;
        _deviceCount = deviceCount;
        _time = time;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(workerStopping);
    }

    public Guid AttemptId { get; }

    /// <summary>Cancelled when the coordinator says stop or the worker shuts down.</summary>
    public CancellationToken Token => _stop.Token;

    /// <summary>Why the coordinator stopped the attempt; null if it did not.</summary>
    public string? StopReason { get; private set; }

    public int Completed { get; private set; }

    public int Total { get; private set; }

    /// <summary>Counted from <see cref="BeginRendering"/>: the wait for a slot costs the studio nothing.</summary>
    public double DeviceSeconds => _rendering is { } started ? _time.GetElapsedTime(started).TotalSeconds * _deviceCount : 0;

    public void BeginRendering() => _rendering = _time.GetTimestamp();

    public void Report(int completed, int total)
    {
        Completed = completed;
        Total = total;
    }

    /// <summary>Every heartbeat repeats the order until the attempt has ended; the log records it once.</summary>
    public void Stop(string reason)
    {
        if (StopReason is not null)
        {
            return;
        }

        StopReason = reason;
        Log("warning", $"stopping: {reason}");
        _stop.Cancel();
    }

    /// <summary>Adds a line; a runaway attempt keeps its first lines and counts the rest.</summary>
    public void Log(string level, string message)
    {
        lock (_gate)
        {
            if (_unsent.Count >= MaxUnsentLines)
            {
                _dropped++;
                return;
            }

            if (_dropped > 0)
            {
                _unsent.Add(new AttemptLogEntry { Seq = _nextSeq++, At = _time.GetUtcNow().UtcDateTime, Level = "warning", Message = $"{_dropped} log line(s) dropped" });
                _dropped = 0;
            }

            _unsent.Add(new AttemptLogEntry { Seq = _nextSeq++, At = _time.GetUtcNow().UtcDateTime, Level = level, Message = message });
        }
    }

    /// <summary>Lines not yet acknowledged by the coordinator (they are resent until they are).</summary>
    public AttemptLogEntry[] UnsentLog()
    {
        lock (_gate)
        {
            return [.. _unsent];
        }
    }

    /// <summary>The coordinator stored every line up to <paramref name="seq"/>.</summary>
    public void Acknowledge(int seq)
    {
        lock (_gate)
        {
            _unsent.RemoveAll(l => l.Seq <= seq);
        }
    }

    public void Dispose() => _stop.Dispose();
}
