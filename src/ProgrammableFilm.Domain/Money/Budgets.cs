namespace ProgrammableFilm.Domain.Money;

/// <summary>Where a project stands against its budget.</summary>
public enum BudgetState
{
    /// <summary>Below the soft threshold, or no budget.</summary>
    Ok,

    /// <summary>At or past the soft threshold: alert, keep dispatching.</summary>
    Soft,

    /// <summary>At or past the limit: nothing new of the project is dispatched; running attempts finish.</summary>
    Hard,
}

/// <summary>Budget arithmetic, in whole micro-dollars like the ledger.</summary>
public static class BudgetPolicy
{
    public const double DefaultSoftFraction = 0.8;

    /// <summary>The soft threshold: the limit × the fraction, rounded up to the micro-dollar (never 0, never above the limit).</summary>
    public static long SoftMicros(long limitMicros, double softFraction) =>
        Math.Clamp((long)Math.Ceiling((decimal)softFraction * limitMicros), 1, limitMicros);

    public static BudgetState State(long spentMicros, long limitMicros, long softMicros) =>
        spentMicros >= limitMicros ? BudgetState.Hard : spentMicros >= softMicros ? BudgetState.Soft : BudgetState.Ok;

    /// <summary>The thresholds crossed upwards when the state goes from <paramref name="before"/> to <paramref name="after"/>, lowest first.</summary>
    public static IReadOnlyList<BudgetState> Crossed(BudgetState before, BudgetState after) =>
        [.. new[] { BudgetState.Soft, BudgetState.Hard }.Where(level => before < level && after >= level)];
}
