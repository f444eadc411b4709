using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Npgsql;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A CI job waiting on a render outlives a restart of the farm's database (the API answers 503 meanwhile) and of the
/// API itself (a deploy, a lost node): <c>pfilm wait</c> says so on one line, asks again, and exits 0 once the job has
/// succeeded. A class of its own, with its own farm processes: the restarts must not leak into the other CLI tests.
/// </summary>
public class CliOutageTests(FarmProcessesFixture farm) : IClassFixture<FarmProcessesFixture>
{
    [Fact]
    public async Task Wait_rides_out_a_database_restart_and_exits_0_when_the_job_succeeds()
    {
        using var http = Client();
        var jobId = await SubmitPausedAsync(http, "outage");

        Task<(int ExitCode, string StandardOutput, string StandardError)> waiting;
        await FaultFarmFixture.RunServiceHelperAsync("pg-stop");
        try
        {
            waiting = PfilmAsync("wait", jobId.ToString(), "--server", farm.Server.ToString());
            await Task.Delay(TimeSpan.FromSeconds(6));
        }
        finally
        {
            await FaultFarmFixture.RunServiceHelperAsync("pg-start");
            NpgsqlConnection.ClearPool(new NpgsqlConnection(TestEnvironment.PostgresAdmin));
        }

        await ResumeAsync(http, jobId);
        var (exitCode, stdout, stderr) = await waiting;

        Assert.True(exitCode == 0, $"exit {exitCode}\n{stdout}\n{stderr}\n{farm.Output}");
        Assert.Contains("pfilm: The farm's database cannot be reached; it may be restarting. Asking again for up to 2 minutes.", stderr.Split('\n'));
        Assert.Contains("outage: Succeeded", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
        var video = Regex.Match(stdout, @"MP4:\s+(\S+)").Groups[1].Value;
        Assert.Equal(24, (await FfprobeResult.ProbeAsync(Path.Combine(farm.StorageRoot, video))).Frames);
    }

    [Fact]
    public async Task Wait_rides_out_an_api_restart_and_exits_0_when_the_job_succeeds()
    {
        using var http = Client();
        var jobId = await SubmitPausedAsync(http, "deploy");

        var waiting = PfilmAsync("wait", jobId.ToString(), "--server", farm.Server.ToString());
        // Long enough for the command to start and have its first answer: a farm that never answered is a wrong address.
        await Task.Delay(TimeSpan.FromSeconds(5));
        await farm.RestartApiAsync();
        await ResumeAsync(http, jobId);
        var (exitCode, stdout, stderr) = await waiting;

        Assert.True(exitCode == 0, $"exit {exitCode}\n{stdout}\n{stderr}\n{farm.Output}");
        Assert.Contains(stderr.Split('\n'), line => line.StartsWith("pfilm: lost the farm (", StringComparison.Ordinal) && line.EndsWith("Asking again for up to 2 minutes.", StringComparison.Ordinal));
        Assert.Contains("deploy: Succeeded", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
    }

    private HttpClient Client()
    {
        var http = new HttpClient { BaseAddress = farm.Server };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", farm.AdminKey);
        return http;
    }

    /// <summary>
    /// Paused, the job is still running when the fault comes, whatever the machine's speed: the wait must span it.
    /// <c>pfilm status</c> first, so that the command is built before any clock starts.
    /// </summary>
    private async Task<Guid> SubmitPausedAsync(HttpClient http, string shot)
    {
        var jobId = await FarmChecks.SubmitAsync(http, "ci", $"project: ci\nshots:\n  - {{name: {shot}, prompt: a lighthouse at night, duration: 2, fps: 12, width: 64, height: 64}}\n");
        using (var paused = await http.PostAsync($"/api/jobs/{jobId}/pause", null))
        {
            Assert.Equal(HttpStatusCode.OK, paused.StatusCode);
        }

        var status = await PfilmAsync("status", jobId.ToString(), "--server", farm.Server.ToString());
        Assert.True(status.ExitCode == 0, status.StandardError);
        return jobId;
    }

    /// <summary>The API's connections come back on their own; until they do, it answers 503 to the resume too.</summary>
    private static async Task ResumeAsync(HttpClient http, Guid jobId)
    {
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (true)
        {
            using var resumed = await http.PostAsync($"/api/jobs/{jobId}/resume", null);
            if (resumed.StatusCode == HttpStatusCode.OK)
            {
                return;
            }

            Assert.True(resumed.StatusCode == HttpStatusCode.ServiceUnavailable && DateTime.UtcNow < deadline, $"resume: {(int)resumed.StatusCode} {await resumed.Content.ReadAsStringAsync()}");
            await Task.Delay(500);
        }
    }

    private Task<(int ExitCode, string StandardOutput, string StandardError)> PfilmAsync(params string[] arguments) =>
        TestEnvironment.RunAsync("bash", ["./pfilm", .. arguments], timeout: TimeSpan.FromMinutes(4), environment: new Dictionary<string, string> { ["PFILM_API_KEY"] = farm.AdminKey });
}
