using ProgrammableFilm.Domain.Money;
using ProgrammableFilm.Domain.Planning;
using ProgrammableFilm.Domain.Takes;

namespace ProgrammableFilm.Domain.Scheduling;

/// <summary>
/// How many attempts travel in one message. Every message costs the broker, the claim round trip and the report the
/// same whatever it carries, which for a one-frame preview task is far more than the render; so short tasks go
/// several to a bundle, up to about <c>bundleSeconds</c> of expected work (the engine's prior rate, the same one a
/// quote starts from). A task expected to take longer than that goes alone: a worker holding a bundle holds all of its
/// attempts, and long ones would then wait behind each other while another worker idles.
/// </summary>
public static class Bundling
{
    public static int Size(string engine, TaskKind kind, int width, int height, int steps, int frames, double bundleSeconds, int maxBundle)
    {
        if (maxBundle <= 1 || bundleSeconds <= 0)
        {
            return 1;
        }

        var work = new QuoteKind(engine, width, height, EngineInputs.ReadsSampler(engine) ? steps : null);
        var expectedSeconds = EngineRates.For(engine).Rate(work, kind, frames) * QuoteModel.UnitsOf(kind, frames);
        return expectedSeconds <= 0 ? maxBundle : (int)Math.Clamp(Math.Floor(bundleSeconds / expectedSeconds), 1, maxBundle);
    }
}
