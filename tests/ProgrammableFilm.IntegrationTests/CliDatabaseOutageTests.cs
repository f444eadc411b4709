using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Npgsql;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A CI job waiting on a render outlives a restart of the farm's database: the API answers 503 meanwhile, and
/// <c>pfilm wait</c> says so on one line, asks again, and exits 0 once the job has succeeded. A class of its own, with
/// its own farm processes: the restart must not leak into the other CLI tests.
/// </summary>
public class CliDatabaseOutageTests(FarmProcessesFixture farm) : IClassFixture<FarmProcessesFixture>
{
    [Fact]
    public async Task Wait_rides_out_a_database_restart_and_exits_0_when_the_job_succeeds()
    {
        using var http = new HttpClient { BaseAddress = farm.Server };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", farm.AdminKey);
        var jobId = await FarmChecks.SubmitAsync(http, "ci", "project: ci\nshots:\n  - {name: outage, prompt: a lighthouse at night, duration: 2, fps: 12, width: 64, height: 64}\n");
        // Paused, the job is still running when the database goes: whatever the machine's speed, the wait must span it.
        using (var paused = await http.PostAsync($"/api/jobs/{jobId}/pause", null))
        {
            Assert.Equal(HttpStatusCode.OK, paused.StatusCode);
        }

        var before = await PfilmAsync("status", jobId.ToString(), "--server", farm.Server.ToString());
        Assert.True(before.ExitCode == 0, before.StandardError);

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
