namespace ProgrammableFilm.Data.Entities;

/// <summary>
/// What a job was quoted at submission (device-seconds, money at the price then in force, energy, wall time on the
/// fleet then live), and once it finished what the ledger says it cost and the signed error against the quote.
/// </summary>
public sealed class JobQuote
{
    public Guid JobId { get; set; }

    public required string Project { get; set; }

    public DateTime QuotedAt { get; set; }

    public required string DeviceSku { get; set; }

    public decimal DollarsPerHour { get; set; }

    public double DeviceSeconds { get; set; }

    public double LowDeviceSeconds { get; set; }

    public double HighDeviceSeconds { get; set; }

    public decimal Cost { get; set; }

    public decimal LowCost { get; set; }

    public decimal HighCost { get; set; }

    public double EnergyKwh { get; set; }

    /// <summary>Null when no worker that runs the job's engines was live at submission.</summary>
    public double? WallSeconds { get; set; }

    public decimal? ActualCost { get; set; }

    public double? ActualDeviceSeconds { get; set; }

    /// <summary>(actual − quoted) / quoted: positive when the job cost more than quoted.</summary>
    public double? ErrorFraction { get; set; }

    public DateTime? FinishedAt { get; set; }
}

/// <summary>One take's part of its job's quote, with its kind (engine, size, steps) for accuracy per kind.</summary>
public sealed class ShotQuote
{
    public Guid ShotId { get; set; }

    public Guid JobId { get; set; }

    public required string Project { get; set; }

    public required string Kind { get; set; }

    /// <summary><c>history</c> (the project's own ledger) or <c>prior</c> (the engine's benchmark rates).</summary>
    public required string Basis { get; set; }

    /// <summary>Finished shots of the kind the estimate was drawn from.</summary>
    public int HistoryShots { get; set; }

    public double DeviceSeconds { get; set; }

    public decimal Cost { get; set; }

    public decimal LowCost { get; set; }

    public decimal HighCost { get; set; }

    public decimal? ActualCost { get; set; }

    public double? ActualDeviceSeconds { get; set; }

    public double? ErrorFraction { get; set; }

    public DateTime? FinishedAt { get; set; }
}
