using Microsoft.Extensions.Hosting;
using ProgrammableFilm.Cli;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// An embedded farm that is stopped before it is disposed, however its test leaves: disposing a running host waits
/// for its Hangfire server, which only a stop ends (a failed assertion in a test that disposed its host unstopped hung
/// the suite in CI for half an hour instead of reporting the failure).
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
