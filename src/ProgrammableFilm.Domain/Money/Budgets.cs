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

    /// <summary>
    /// A budget's limit in dollars and soft fraction, checked the same wherever a budget is set (a project's, a job's by
    /// its endpoint or its spec); errors name the fields <c>limitUsd</c> and <c>softFraction</c>. The fraction defaults.
    /// </summary>
    public static (double Fraction, List<FieldError> Errors) CheckLimit(decimal limitUsd, double? softFraction)
    {
        var errors = new List<FieldError>();
        MoneyRules.CheckDollars("limitUsd", limitUsd, MoneyRules.MaxBudgetUsd, zeroAllowed: false, errors);
        var fraction = softFraction ?? DefaultSoftFraction;
        MoneyRules.CheckNumber("softFraction", fraction, 0, 1, minAllowed: false, errors);
        return (fraction, errors);
    }

    /// <summary>The thresholds crossed upwards when the state goes from <paramref name="before"/> to <paramref name="after"/>, lowest first.</summary>
    public static IReadOnlyList<BudgetState> Crossed(BudgetState before, BudgetState after) =>
        [.. new[] { BudgetState.Soft, BudgetState.Hard }.Where(level => before < level && after >= level)];
}
