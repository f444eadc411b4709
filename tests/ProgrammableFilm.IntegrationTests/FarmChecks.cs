using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// What every fault test asks of a farm after the fault: the job ended Succeeded, each shot's MP4 has every frame,
/// each attempt that ran is billed exactly once (and each task's success once), no task had two live attempts at
/// once, and no message sits in an <c>_error</c> queue. Waits poll a condition against a deadline, never sleep.
/// </summary>
public static class FarmChecks
{
    /// <summary>
    /// Prices the project's CPU time at $36 an hour (<paramref name="http"/> holds an admin key). Each attempt's bill is
    /// rounded to the micro-dollar, and at the farm's CPU price a small procedural frame or an in-process encode costs
    /// less than one: a test that needs a bill to show, or a budget to cross, prices its project first.
    /// </summary>
    public static async Task PriceProjectCpuAsync(HttpClient http, string project)
    {
        using var price = await http.PostAsJsonAsync("/api/prices/devices", new { sku = "cpu", dollarsPerHour = 36m, ratedWatts = 12, project });
        Assert.True(price.IsSuccessStatusCode, await price.Content.ReadAsStringAsync());
    }

    public static async Task<Guid> SubmitAsync(HttpClient http, string project, string yaml)
    {
        using var content = new StringContent(yaml, Encoding.UTF8, "application/yaml");
        using var response = await http.PostAsync($"/api/projects/{project}/jobs", content);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options))!.Id;
    }

    public static async Task<JobStatus> GetJobAsync(HttpClient http, Guid jobId) =>
        (await http.GetFromJsonAsync<JobStatus>($"/api/jobs/{jobId}", SpecJson.Options))!;

    /// <summary>Polls the job through the API until it reaches <paramref name="state"/> (or another final state).</summary>
    public static async Task<JobStatus> WaitForJobAsync(HttpClient http, Guid jobId, string state, TimeSpan timeout, Func<string> diagnostics)
    {
        var deadline = DateTime.UtcNow + timeout;
        JobStatus? status = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                status = await GetJobAsync(http, jobId);
            }
            catch (HttpRequestException)
            {
                // The API answers 500 while its database is away; the job's state is what counts.
                status = null;
            }

            if (status is not null && (status.State == state || status.State is "Succeeded" or "Failed" or "Cancelled"))
            {
                Assert.True(status.State == state, $"job {jobId} ended {status.State} ({status.Error}), expected {state}\n{diagnostics()}");
                return status;
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"job {jobId} not {state} within {timeout} (last: {status?.State}, {status?.TasksSucceeded}/{status?.TasksTotal} tasks)\n{diagnostics()}");
    }

    /// <summary>Runs <paramref name="query"/> on a fresh context until <paramref name="done"/> holds; fails at the deadline.</summary>
    public static async Task<T> PollAsync<T>(Func<FarmDbContext> createContext, Func<FarmDbContext, Task<T>> query, Func<T, bool> done, TimeSpan timeout, string what, Func<string>? diagnostics = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            T value;
            await using (var db = createContext())
            {
                value = await query(db);
            }

            if (done(value))
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{what}: not reached within {timeout}; last value: {value}\n{diagnostics?.Invoke()}");
            await Task.Delay(100);
        }
    }

    /// <summary>The first attempt of the job in state Claimed on a task of <paramref name="kind"/>, once there is one.</summary>
    public static Task<Attempt> WaitForClaimedAttemptAsync(Func<FarmDbContext> createContext, Guid jobId, string kind, Func<string> diagnostics) =>
        PollAsync(
            createContext,
            db => db.Attempts.Where(a => a.State == AttemptState.Claimed)
                .Join(db.Tasks.Where(t => t.JobId == jobId && t.Kind == kind), a => a.TaskId, t => t.Id, (a, t) => a)
                .OrderBy(a => a.ClaimedAt)
                .FirstOrDefaultAsync(),
            attempt => attempt is not null,
            TimeSpan.FromSeconds(90),
            $"a claimed {kind} attempt of job {jobId}",
            diagnostics)!;

    /// <summary>Every shot's MP4, counted frame by frame by ffprobe, has the shot's frame count.</summary>
    public static async Task AssertEveryFrameIsInTheVideoAsync(JobStatus status, string storageRoot)
    {
        Assert.NotEmpty(status.Shots);
        foreach (var shot in status.Shots)
        {
            Assert.True(shot.Video is not null, $"shot {shot.Name} has no video");
            var probe = await FfprobeResult.ProbeAsync(Path.Combine(storageRoot, shot.Video));
            Assert.Equal((shot.Name, "h264", shot.FrameCount), (shot.Name, probe.Codec, probe.Frames));
        }
    }

    /// <summary>
    /// Each attempt that ran (was claimed) has exactly one ledger row whose outcome matches how it ended, and an
    /// attempt that never ran has none; every task succeeded through exactly one attempt and is billed one success;
    /// no task's attempts were live (claimed, not yet ended) at the same time.
    /// </summary>
    public static async Task<(List<RenderTask> Tasks, List<Attempt> Attempts, List<UsageRecord> Ledger)> AssertBilledOnceAsync(FarmDbContext db, Guid jobId)
    {
        var tasks = await db.Tasks.AsNoTracking().Where(t => t.JobId == jobId).ToListAsync();
        var taskIds = tasks.Select(t => t.Id).ToList();
        var attempts = await db.Attempts.AsNoTracking().Where(a => taskIds.Contains(a.TaskId)).ToListAsync();
        var ledger = await db.Usage.AsNoTracking().Where(u => u.JobId == jobId).ToListAsync();
        var keys = tasks.ToDictionary(t => t.Id, t => t.Key);
        string Describe() => string.Join('\n', attempts.OrderBy(a => keys[a.TaskId], StringComparer.Ordinal).ThenBy(a => a.Number)
            .Select(a => $"{keys[a.TaskId]} #{a.Number} {a.State} {a.WorkerId} claimed {a.ClaimedAt:HH:mm:ss.fff} finished {a.FinishedAt:HH:mm:ss.fff} billed [{string.Join(',', ledger.Where(u => u.AttemptId == a.Id).Select(u => u.Outcome))}] {a.Error}"));

        var ran = attempts.Where(a => a.ClaimedAt is not null).ToList();
        Assert.True(
            ran.Select(a => a.Id).Order().SequenceEqual(ledger.Select(u => u.AttemptId).Order()),
            $"the ledger must hold one row per attempt that ran:\n{Describe()}");
        var expectedOutcome = new Dictionary<AttemptState, string>
        {
            [AttemptState.Succeeded] = "succeeded",
            [AttemptState.Failed] = "failed",
            [AttemptState.Lost] = "lost",
            [AttemptState.Cancelled] = "cancelled",
        };
        foreach (var attempt in ran)
        {
            Assert.True(
                expectedOutcome.TryGetValue(attempt.State, out var outcome) && ledger.Single(u => u.AttemptId == attempt.Id).Outcome == outcome,
                $"attempt {keys[attempt.TaskId]} #{attempt.Number} ended {attempt.State} but is billed '{ledger.Single(u => u.AttemptId == attempt.Id).Outcome}':\n{Describe()}");
        }

        foreach (var task in tasks)
        {
            var succeeded = attempts.Where(a => a.TaskId == task.Id && a.State == AttemptState.Succeeded).ToList();
            Assert.True(task.State == RenderTaskState.Succeeded && succeeded.Count == 1 && succeeded[0].Id == task.CurrentAttemptId, $"task {task.Key} is {task.State} with {succeeded.Count} succeeded attempt(s):\n{Describe()}");
            Assert.True(ledger.Count(u => u.TaskId == task.Id && u.Outcome == "succeeded") == 1, $"task {task.Key} must be billed one success:\n{Describe()}");

            // The fencing token at work: a task's next attempt is claimed only after its previous one ended.
            var claimed = attempts.Where(a => a.TaskId == task.Id && a.ClaimedAt is not null).OrderBy(a => a.ClaimedAt).ToList();
            for (var i = 1; i < claimed.Count; i++)
            {
                Assert.True(claimed[i - 1].FinishedAt is { } end && end <= claimed[i].ClaimedAt, $"task {task.Key} had attempts #{claimed[i - 1].Number} and #{claimed[i].Number} live at once:\n{Describe()}");
            }
        }

        return (tasks, attempts, ledger);
    }

    /// <summary>GET /api/farm/error-queues: every one of the farm's <c>_error</c> queues is empty.</summary>
    public static async Task AssertNoErrorQueueMessagesAsync(HttpClient http)
    {
        var queues = (await http.GetFromJsonAsync<List<ErrorQueueCount>>("/api/farm/error-queues", SpecJson.Options))!;
        Assert.NotEmpty(queues);
        Assert.All(queues, q => Assert.True(q.Messages == 0, $"{q.Messages} message(s) in {q.Queue}"));
    }
}
