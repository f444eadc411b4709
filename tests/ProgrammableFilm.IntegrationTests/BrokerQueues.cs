using System.Globalization;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// Queue depths of the test broker, read with <c>rabbitmqctl</c> because only it reports unacknowledged messages. A
/// consumer holds a message unacknowledged while it handles it (retries included), so a queue with nothing ready and
/// nothing unacknowledged has handled every message published to it before the check: that is the observable
/// condition tests wait on instead of sleeping.
/// </summary>
public static class BrokerQueues
{
    public sealed record Depth(long Ready, long Unacknowledged);

    public static async Task<IReadOnlyDictionary<string, Depth>> ListAsync()
    {
        var rabbitmqctl = Path.Combine(
            Environment.GetEnvironmentVariable("PFILM_TEST_SERVICES_DIR") is { Length: > 0 } directory
                ? directory
                : throw new InvalidOperationException("PFILM_TEST_SERVICES_DIR is not set: run the integration tests through ./test.sh."),
            "bin",
            "rabbitmqctl");
        var (exitCode, output, error) = await TestEnvironment.RunAsync(rabbitmqctl, ["list_queues", "--quiet", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged"], timeout: TimeSpan.FromMinutes(1));
        Assert.True(exitCode == 0, $"rabbitmqctl list_queues failed: {error}");
        var depths = new Dictionary<string, Depth>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var fields = line.Split('\t');
            if (fields.Length == 3
                && long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ready)
                && long.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var unacknowledged))
            {
                depths[fields[0]] = new Depth(ready, unacknowledged);
            }
        }

        return depths;
    }

    /// <summary>Waits until every named queue exists and has handled all it was given.</summary>
    public static async Task WaitUntilHandledAsync(params string[] queues)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var depths = await ListAsync();
            var pending = queues.Where(q => !depths.TryGetValue(q, out var depth) || depth != new Depth(0, 0)).ToList();
            if (pending.Count == 0)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"queues not drained in 60 s: {string.Join(", ", pending.Select(q => $"{q} {(depths.TryGetValue(q, out var d) ? d : "missing")}"))}");
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// Messages MassTransit moved to the <c>_error</c> queues of a farm: each one is a message whose handling failed
    /// through every retry, so the state it should have changed was never changed.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, long>> FaultedAsync(string queuePrefix) =>
        (await ListAsync())
            .Where(q => q.Key.StartsWith(queuePrefix, StringComparison.Ordinal) && q.Key.EndsWith("_error", StringComparison.Ordinal) && q.Value.Ready + q.Value.Unacknowledged > 0)
            .ToDictionary(q => q.Key, q => q.Value.Ready + q.Value.Unacknowledged, StringComparer.Ordinal);
}
