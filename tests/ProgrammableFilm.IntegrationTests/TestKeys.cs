using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>API keys for the farms the tests start: made by the farm's own <see cref="ApiKeys"/> or its <c>create-key</c> verb.</summary>
public static class TestKeys
{
    public const string Header = "X-Api-Key";

    /// <summary>Writes a key into the farm's database, as the <c>create-key</c> verb does, and returns it.</summary>
    public static async Task<string> CreateAsync(string connectionString, string? project = null, ApiKeyRole role = ApiKeyRole.Admin, DateTime? expiresAt = null)
    {
        var services = new ServiceCollection()
            .AddFarmData(new DatabaseOptions(DatabaseProvider.Postgres, connectionString))
            .AddSingleton(TimeProvider.System)
            .AddSingleton<ApiKeys>()
            .BuildServiceProvider();
        await using (services)
        {
            var created = await services.GetRequiredService<ApiKeys>().CreateAsync($"tests {role}", project, role, expiresAt, null, CancellationToken.None);
            return created.Key;
        }
    }

    /// <summary>Runs <c>ProgrammableFilm.Api create-key</c> with a farm's environment, as the README says, and returns the key it prints.</summary>
    public static async Task<string> CreateWithVerbAsync(IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        var output = new ConcurrentQueue<string>();
        using var process = TestEnvironment.StartProject("ProgrammableFilm.Api", ["create-key", .. arguments], environment, output, "create-key");
        await process.WaitForExitAsync();
        var key = output.Select(line => line.Split("] ", 2)[^1]).SingleOrDefault(line => line.StartsWith("pf_", StringComparison.Ordinal));
        Assert.True(process.ExitCode == 0 && key is not null, $"create-key failed (exit {process.ExitCode}):\n{string.Join('\n', output)}");
        return key!;
    }

    /// <summary>An HTTP client that sends <paramref name="key"/> on every request.</summary>
    public static HttpClient WithKey(this HttpClient http, string key)
    {
        http.DefaultRequestHeaders.Remove(Header);
        http.DefaultRequestHeaders.Add(Header, key);
        return http;
    }
}
