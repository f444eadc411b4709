namespace ProgrammableFilm.Domain.Scheduling;

/// <summary>How a failed attempt was classified by its worker.</summary>
public enum FailureClass
{
    /// <summary>Might not happen again (a lost connection, a killed process, a full disk): retry with backoff.</summary>
    Transient,

    /// <summary>The device ran out of memory: retry with half the frames per batch.</summary>
    OutOfMemory,

    /// <summary>Bad parameters or missing inputs: retrying cannot help; fail the shot at once.</summary>
    Fatal,

    /// <summary>The worker stopped the attempt because the coordinator told it to: nothing to decide.</summary>
    Cancelled,
}

/// <summary>What happens to a task after one of its attempts failed.</summary>
public abstract record FailureDecision
{
    /// <summary>Run the task again, not before <paramref name="Delay"/> from now, with at most <paramref name="MaxFrameBatch"/> frames per batch (null: the worker's default).</summary>
    public sealed record Retry(TimeSpan Delay, int? MaxFrameBatch) : FailureDecision;

    /// <summary>Fail the task, its shot and its job with <paramref name="Reason"/>.</summary>
    public sealed record Fail(string Reason) : FailureDecision;

    /// <summary>Leave the task as it is (the attempt was stopped on purpose).</summary>
    public sealed record Ignore : FailureDecision;
}

/// <summary>Retry rules by failure class, as pure functions of the task's history.</summary>
public static class FailurePolicy
{
    public static FailureClass Parse(string classification) => classification switch
    {
        "transient" => FailureClass.Transient,
        "out-of-memory" => FailureClass.OutOfMemory,
        "cancelled" => FailureClass.Cancelled,
        _ => FailureClass.Fatal,
    };

    /// <summary>
    /// Decides a failed attempt's task. <paramref name="failuresBefore"/> counts the task's earlier transient and
    /// out-of-memory failures; <paramref name="retries"/> is the job's allowance per task. Out of memory with a
    /// pool of bigger devices live (<paramref name="biggerPoolLive"/>), the task moves there with its batch as it was;
    /// otherwise it tries again where it was, with half the frames per batch.
    /// </summary>
    public static FailureDecision Decide(FailureClass failure, int failuresBefore, int retries, int? maxFrameBatch, int frames, TimeSpan backoffBase, TimeSpan backoffMax, string reason, bool biggerPoolLive = false)
    {
        switch (failure)
        {
            case FailureClass.Cancelled:
                return new FailureDecision.Ignore();
            case FailureClass.Fatal:
                return new FailureDecision.Fail(reason);
        }

        if (failuresBefore >= retries)
        {
            return new FailureDecision.Fail(retries == 0 ? reason : $"{reason} (gave up after {retries} retr{(retries == 1 ? "y" : "ies")})");
        }

        if (failure == FailureClass.OutOfMemory)
        {
            if (biggerPoolLive)
            {
                return new FailureDecision.Retry(TimeSpan.Zero, maxFrameBatch);
            }

            var batch = maxFrameBatch ?? frames;
            if (batch <= 1)
            {
                return new FailureDecision.Fail($"{reason} (out of memory even one frame at a time)");
            }

            return new FailureDecision.Retry(TimeSpan.Zero, Math.Max(1, batch / 2));
        }

        return new FailureDecision.Retry(Backoff(failuresBefore, backoffBase, backoffMax), maxFrameBatch);
    }

    /// <summary>Exponential backoff: base, 2 × base, 4 × base, ... capped.</summary>
    public static TimeSpan Backoff(int failuresBefore, TimeSpan backoffBase, TimeSpan backoffMax)
    {
        var factor = Math.Pow(2, Math.Min(failuresBefore, 30));
        return TimeSpan.FromTicks((long)Math.Min(backoffBase.Ticks * factor, backoffMax.Ticks));
    }
}

/// <summary>
/// Per-job blocklists of workers (as in Flamenco and Deadline): a worker that keeps failing one job's tasks is kept
/// away from that job, unless no other worker could take the work, and is forgiven after a while.
/// </summary>
public static class WorkerBlocklist
{
    /// <summary>True when the worker, with <paramref name="blockedAt"/> set by an earlier failure, must not take the job's work now.</summary>
    public static bool Refuses(DateTime? blockedAt, DateTime now, TimeSpan forgiveAfter, int otherEligibleWorkers) =>
        blockedAt is { } at && now - at < forgiveAfter && otherEligibleWorkers > 0;

    /// <summary>True when this failure, the <paramref name="failures"/>-th of the worker on the job, blocks it.</summary>
    public static bool Blocks(int failures, int threshold) => threshold > 0 && failures >= threshold;
}
