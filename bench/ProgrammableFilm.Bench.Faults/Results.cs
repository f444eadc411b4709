namespace ProgrammableFilm.Bench.Faults;

/// <summary>A fault could not be injected as the scenario says (no task in flight, an endpoint missing, …).</summary>
public sealed class FaultNotAppliedException(string message) : Exception(message);

/// <summary>When the fault hit, what it did, and the lost-worker measurements it took.</summary>
public sealed record FaultReport(DateTime At, IReadOnlyList<string> Notes, IReadOnlyList<Recovery> Recoveries);

/// <summary>One attempt that was running on a killed worker, and how long until its task ran again.</summary>
public sealed record Recovery(string Scenario, string Kill, double AtSeconds, string Worker, string Task, double? RerunSeconds, double? LostSeconds, string? Note);

public sealed record JobOutcome
{
    public bool Submitted { get; init; }

    public bool Completed { get; init; }

    /// <summary>False when the scenario's fault could not be injected: then the job proves nothing.</summary>
    public bool FaultApplied { get; init; } = true;

    public int? MissingFrames { get; init; }

    public int? DoubleBilled { get; init; }

    public double? FaultToSuccessSeconds { get; init; }

    public double WallSeconds { get; init; }

    public IReadOnlyDictionary<string, long> AttemptStates { get; init; } = new Dictionary<string, long>();

    public IReadOnlyList<string> Notes { get; init; } = [];

    public IReadOnlyList<Recovery> Recoveries { get; init; } = [];

    public bool Passed => Completed && FaultApplied && MissingFrames == 0 && DoubleBilled == 0;
}

public sealed record ScenarioResult(Scenario Scenario, IReadOnlyList<JobOutcome> Jobs, double WallSeconds)
{
    public bool Passed => Jobs.Count > 0 && Jobs.All(j => j.Passed);
}
