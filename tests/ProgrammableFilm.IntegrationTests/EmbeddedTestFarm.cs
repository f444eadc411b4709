using Microsoft.Extensions.Hosting;
using ProgrammableFilm.Cli;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// An embedded farm that is stopped before it is disposed, however its test leaves, with both steps bounded: in CI a
/// test that failed disposed its farm running and that dispose waited half an hour for the Hangfire server, and in
/// the next run the failing test's stop waited past 30 s for it; the test's own failure is what must be reported.
/// </summary>
public sealed class EmbeddedTestFarm : IAsyncDisposable
{
    private readonly IHost _host;
    private bool _stopped;

    private EmbeddedTestFarm(IHost host) => _host = host;

    public IServiceProvider Services => _host.Services;

    public static async Task<EmbeddedTestFarm> StartAsync(string folder, int slots, string diffusionEngine = "auto") =>
        new(await EmbeddedFarm.StartAsync(folder, slots, CancellationToken.None, diffusionEngine));

    public async Task StopAsync()
    {
        _stopped = true;
        await _host.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopped)
        {
            _host.Dispose();
            return;
        }

        // The test is failing: its own exception is the one to report, so a farm that will not shut down is left behind.
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _host.StopAsync(timeout.Token);
            await Task.Run(_host.Dispose).WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"An embedded farm did not shut down after its test failed: {e.Message}");
        }
    }
}
