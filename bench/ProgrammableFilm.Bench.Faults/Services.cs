using System.Diagnostics;
using System.Net.Sockets;
using Npgsql;

namespace ProgrammableFilm.Bench.Faults;

/// <summary>
/// The faults themselves, through the helpers scripts/services.sh writes into its directory (bin/pg-stop, …): each runs
/// as the right user and waits until done. Restores never take the scenario's token: a timed-out scenario must still
/// leave the services up.
/// </summary>
public sealed class Services(Settings settings)
{
    public Task PostgresStopAsync() => RunAsync("pg-stop");

    public Task PostgresStartAsync() => RunAsync("pg-start");

    public Task RabbitMqStopAppAsync() => RunAsync("rabbitmqctl", "stop_app");

    public Task RabbitMqStartAppAsync() => RunAsync("rabbitmqctl", "start_app");

    public Task RabbitMqStopNodeAsync() => RunAsync("rabbitmq-stop");

    public Task RabbitMqStartNodeAsync() => RunAsync("rabbitmq-start");

    /// <summary>Brings back whatever a failed scenario left down.</summary>
    public async Task EnsureUpAsync()
    {
        if (!await PostgresUpAsync())
        {
            Log.Line("PostgreSQL is down; starting it");
            await PostgresStartAsync();
        }

        if (!await RabbitMqUpAsync())
        {
            Log.Line("RabbitMQ does not accept connections; start_app, else a node start");
            try
            {
                await RabbitMqStartAppAsync();
            }
            catch (InvalidOperationException)
            {
                await RabbitMqStartNodeAsync();
            }
        }
    }

    public async Task<bool> PostgresUpAsync()
    {
        try
        {
            await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(settings.PostgresAdmin) { Pooling = false, Timeout = 3 }.ConnectionString);
            await connection.OpenAsync();
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException)
        {
            return false;
        }
    }

    public async Task<bool> RabbitMqUpAsync()
    {
        try
        {
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            await client.ConnectAsync("127.0.0.1", settings.RabbitMqPort, timeout.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    private async Task RunAsync(string helper, params string[] arguments)
    {
        var start = new ProcessStartInfo(Path.Combine(settings.ServicesDirectory, "bin", helper)) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{helper} {string.Join(' ', arguments)} failed (exit {process.ExitCode}): {await output} {await error}".Trim());
        }
    }
}
