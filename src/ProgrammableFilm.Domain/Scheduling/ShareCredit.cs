namespace ProgrammableFilm.Domain.Scheduling;

/// <summary>
/// What whole attempts cannot give: with ten live attempts, weights 3 and 1 ask for 7.5 and 2.5, and the fair share's
/// occupancy rule settles on 7 and 3, which is 70/30 of the device time rather than 75/25 (the smaller the fleet, the
/// larger that rounding). Each project's shortfall against its exact part of the contended attempts is integrated over
/// time into a credit of at most one attempt either way, which <see cref="FairShare.Plan"/> counts against its
/// occupancy: the split then alternates between 7:3 and 8:2 for as long as each makes up the other's rounding.
/// A project with nothing Ready drops its credit, so nobody banks one for later.
/// </summary>
/// <param name="settlingTime">How long a shortfall of one whole attempt takes to earn one attempt of credit.</param>
public sealed class ShareCredit(TimeSpan settlingTime)
{
    private const double MaxCredit = 1;

    private readonly Dictionary<string, double> _credit = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _shortfall = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>
    /// Credits each contending project with the shortfall it was left with by the last update (its weight's part of
    /// the contending projects' live attempts, less its own) over the <paramref name="elapsed"/> since, when that was
    /// at most one attempt; then keeps the shortfall that <paramref name="liveByProject"/>, the live attempts from
    /// now on, leaves. Returns everyone's credit.
    /// </summary>
    public IReadOnlyDictionary<string, double> Update(
        IReadOnlyDictionary<string, int> liveByProject,
        IReadOnlySet<string> contending,
        IReadOnlyDictionary<string, double> weights,
        TimeSpan elapsed)
    {
        lock (_lock)
        {
            foreach (var project in _credit.Keys.Where(p => !contending.Contains(p)).ToList())
            {
                _credit.Remove(project);
            }

            var step = elapsed / settlingTime;
            foreach (var (project, shortfall) in _shortfall)
            {
                // More than a whole attempt short is the occupancy rule's to make up (a project catching up after its
                // first submission is): counted here it would become an attempt too many once caught up.
                if (contending.Contains(project) && Math.Abs(shortfall) <= 1)
                {
                    _credit[project] = Math.Clamp(_credit.GetValueOrDefault(project) + (shortfall * step), -MaxCredit, MaxCredit);
                }
            }

            _shortfall.Clear();
            var live = contending.Sum(p => liveByProject.GetValueOrDefault(p));
            var weight = contending.Sum(p => FairShare.Weight(weights, p));
            foreach (var project in contending)
            {
                _shortfall[project] = (live * FairShare.Weight(weights, project) / weight) - liveByProject.GetValueOrDefault(project);
            }

            return new Dictionary<string, double>(_credit, StringComparer.Ordinal);
        }
    }
}
