using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Microsoft.Playwright;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The farm as the README starts it (migration step, API process, two worker processes, on the real PostgreSQL and
/// RabbitMQ) and Debian's Chromium driven by Playwright, for the dashboard and the API reference page.
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    private readonly List<Process> _processes = [];
    private readonly ConcurrentQueue<string> _output = new();
    private IPlaywright? _playwright;

    public Uri Server { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    /// <summary>The key the pages and the tests' own requests use (the dashboard keeps it in local storage).</summary>
    public string AdminKey { get; private set; } = "";

    public IBrowser Browser { get; private set; } = null!;

    public string StorageRoot { get; } = TestEnvironment.CreateTemporaryFolder("pfilm-dashboard");

    public string Output => string.Join('\n', _output);

    /// <summary>Where screenshots go: the README's images with <c>PFILM_UPDATE_SCREENSHOTS=1</c>, else a temporary folder.</summary>
    public string ScreenshotFolder { get; } = Environment.GetEnvironmentVariable("PFILM_UPDATE_SCREENSHOTS") == "1"
        ? Path.Combine(TestEnvironment.RepositoryRoot, "docs", "images")
        : TestEnvironment.CreateTemporaryFolder("pfilm-screenshots");

    public async Task InitializeAsync()
    {
        Server = new Uri($"http://127.0.0.1:{TestEnvironment.FreePort()}");
        var environment = new Dictionary<string, string>
        {
            ["Database__ConnectionString"] = await TestEnvironment.CreateDatabaseAsync("pfilm_dash"),
            ["RabbitMq__Uri"] = TestEnvironment.RabbitMq,
            ["RabbitMq__Prefix"] = $"d{Guid.NewGuid().ToString("N")[..8]}-",
            ["Storage__Root"] = StorageRoot,
            ["Coordinator__PollInterval"] = "00:00:00.250",
        };

        var migrate = TestEnvironment.StartProject("ProgrammableFilm.Api", ["migrate"], environment, _output, "migrate");
        _processes.Add(migrate);
        await migrate.WaitForExitAsync();
        Assert.True(migrate.ExitCode == 0, $"migrate failed:\n{Output}");

        _processes.Add(TestEnvironment.StartProject("ProgrammableFilm.Api", ["--urls", Server.ToString()], environment, _output, "api"));
        foreach (var worker in new[] { "dash-worker-a", "dash-worker-b" })
        {
            _processes.Add(await TestEnvironment.StartWorkerAsync(worker, new Dictionary<string, string>(environment) { ["Worker__Id"] = worker, ["Worker__DeviceCount"] = "1" }, _output));
        }

        AdminKey = await TestKeys.CreateAsync(environment["Database__ConnectionString"]);
        Http = new HttpClient { BaseAddress = Server }.WithKey(AdminKey);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                if ((await Http.GetAsync("/healthz")).StatusCode == HttpStatusCode.OK)
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.True(DateTime.UtcNow < deadline, $"the API did not come up:\n{Output}");
            await Task.Delay(250);
        }

        _playwright = await Playwright.CreateAsync();
        // Debian's Chromium, never a downloaded one (docs/testing.md).
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = "/usr/bin/chromium", Headless = true });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
        Http?.Dispose();
        await TestEnvironment.StopAsync(_processes);
        Directory.Delete(StorageRoot, recursive: true);
    }

    /// <summary>A fresh page at 1280×800 whose console errors and failed requests end up in <paramref name="problems"/>.</summary>
    public async Task<IPage> NewPageAsync(ConcurrentQueue<string> problems)
    {
        var page = await Browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 }, BaseURL = Server.ToString() });
        await page.AddInitScriptAsync($"localStorage.setItem('pfilm-api-key', '{AdminKey}')");
        // A failed request is logged to the console without its address: it is judged by its response instead.
        page.Console += (_, message) =>
        {
            if (message.Type == "error" && !message.Text.StartsWith("Failed to load resource", StringComparison.Ordinal))
            {
                problems.Enqueue($"console: {message.Text}");
            }
        };
        page.Response += (_, response) =>
        {
            if (response.Status >= 400 && !(response.Status == 404 && IsOptional(response.Url)))
            {
                problems.Enqueue($"HTTP {response.Status}: {response.Url}");
            }
        };
        page.PageError += (_, error) => problems.Enqueue($"page error: {error}");
        return page;
    }

    /// <summary>Budgets and quotes are read when the API has them; without them the dashboard shows no banner or quote.</summary>
    private static bool IsOptional(string url) => url.EndsWith("/budget", StringComparison.Ordinal) || url.EndsWith("/quote", StringComparison.Ordinal);
}
