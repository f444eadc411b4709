namespace ProgrammableFilm.Worker.Energy;

/// <summary>
/// Splits what the worker's meter counts between the attempts rendering at the time. The counter is read whenever an
/// attempt starts or ends (and on every heartbeat, so that no counter wraps unseen); between two reads the set of
/// rendering attempts is fixed, so the energy in between is divided equally among them. Energy while nothing renders
/// (idle) is billed to no attempt. Without a meter every attempt's energy is estimated by the coordinator from the
/// SKU's rated watts, and marked so.
/// </summary>
public sealed class EnergyAccount(IEnergyMeter? meter)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, double> _rendering = [];
    private double? _last;
    private bool _failed;

    /// <summary>Where the energy comes from; null when it is estimated.</summary>
    public string? Source => meter?.Source;

    public void Start(Guid attemptId)
    {
        lock (_gate)
        {
            Sample();
            _rendering[attemptId] = 0;
        }
    }

    /// <summary>The attempt's measured joules, or null when there is no meter or a read failed while it rendered (then it is estimated).</summary>
    public double? Finish(Guid attemptId)
    {
        lock (_gate)
        {
            Sample();
            if (!_rendering.Remove(attemptId, out var joules) || meter is null || _failed)
            {
                // A failed read loses an interval for everyone rendering in it: estimate them all rather than under-bill.
                _failed = _failed && _rendering.Count > 0;
                return null;
            }

            return joules;
        }
    }

    /// <summary>Reads the meter and shares what it counted since the last read among the rendering attempts.</summary>
    public void Sample()
    {
        if (meter is null)
        {
            return;
        }

        lock (_gate)
        {
            var now = meter.ReadJoules();
            if (now is null)
            {
                _failed |= _rendering.Count > 0;
                return;
            }

            if (_last is { } last && _rendering.Count > 0)
            {
                var share = Math.Max(0, now.Value - last) / _rendering.Count;
                foreach (var id in _rendering.Keys.ToList())
                {
                    _rendering[id] += share;
                }
            }

            _last = now;
        }
    }
}
