using System.Net;
using System.Text;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Contracts;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The test playing a worker against a coordinator-only farm: it claims attempts over the real claim queue and
/// publishes what a worker would report on the real bus, so every message goes through RabbitMQ and the consumers.
/// </summary>
public sealed class WorkerDouble(FarmFixture farm)
{
    /// <summary>One second at 24 fps with keyframes every 12 frames: kf-00000, kf-00012, kf-00023, two segments, assembly.</summary>
    public const string OneSecondShot = """
        shots:
          - {name: fence, prompt: a green bird falling in the forest, duration: 1, fps: 24, width: 64, height: 64, keyframeInterval: 12}
        """;

    public IBus Bus => farm.Api.Services.GetRequiredService<IBus>();

    public string TaskSucceededQueue => $"{farm.QueuePrefix}task-succeeded";

    public string TaskFailedQueue => $"{farm.QueuePrefix}task-failed";

    public async Task<Guid> SubmitAsync(string project, string yaml = OneSecondShot)
    {
        using var content = new StringContent($"project: {project}\n{yaml}", Encoding.UTF8, "application/yaml");
        using var response = await farm.Http.PostAsync($"/api/projects/{project}/jobs", content);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return Guid.Parse(response.Headers.Location!.OriginalString.Split('/')[^1]);
    }

    /// <summary>Waits until the dispatcher has given each of the job's first <paramref name="count"/> tasks an attempt; returns them by task key.</summary>
    public async Task<IReadOnlyDictionary<string, Attempt>> WaitForAttemptsAsync(Guid jobId, int count)
    {
        var attempts = await WaitForAsync(
            db => db.Attempts.Join(db.Tasks.Where(t => t.JobId == jobId), a => a.TaskId, t => t.Id, (a, t) => new { t.Key, Attempt = a }).ToListAsync(),
            list => list.Count >= count);
        return attempts.ToDictionary(x => x.Key, x => x.Attempt, StringComparer.Ordinal);
    }

    /// <summary>Claims attempts in one request, as a worker claims a bundle; the coordinator's answer.</summary>
    public async Task<AttemptClaimsDecided> ClaimAllAsync(string workerId, params Guid[] attemptIds)
    {
        var client = Bus.CreateRequestClient<ClaimAttempts>(new Uri($"queue:{farm.QueuePrefix}claim-attempt"));
        var response = await client.GetResponse<AttemptClaimsDecided>(
            new ClaimAttempts { AttemptIds = attemptIds, WorkerId = workerId, Pool = "cpu", DeviceSku = "cpu", DeviceCount = 1, Hostname = "test" });
        return response.Message;
    }

    /// <summary>Claims one attempt: null when granted, else the coordinator's reason.</summary>
    public async Task<string?> ClaimAsync(Guid attemptId, string workerId)
    {
        var decided = await ClaimAllAsync(workerId, attemptId);
        return decided.Granted.Contains(attemptId) ? null : Assert.Single(decided.Refused, r => r.AttemptId == attemptId).Reason;
    }

    /// <summary>Claims an attempt that must be granted.</summary>
    public async Task ClaimGrantedAsync(Guid attemptId, string workerId)
    {
        var refusal = await ClaimAsync(attemptId, workerId);
        Assert.True(refusal is null, $"claim of {attemptId} by {workerId} was refused: {refusal}");
    }

    /// <summary>Sends a heartbeat as worker <paramref name="workerId"/>, holding <paramref name="attemptId"/> if given; returns the coordinator's answer.</summary>
    public async Task<HeartbeatAcknowledged> HeartbeatAsync(string workerId, Guid? attemptId, double deviceSeconds = 1, int completed = 1, AttemptLogEntry[]? log = null)
    {
        var client = Bus.CreateRequestClient<WorkerHeartbeat>(new Uri($"queue:{farm.QueuePrefix}worker-heartbeat"));
        var response = await client.GetResponse<HeartbeatAcknowledged>(new WorkerHeartbeat
        {
            WorkerId = workerId,
            Pool = "cpu",
            DeviceSku = "cpu",
            DeviceCount = 1,
            Slots = 1,
            Hostname = "test",
            Attempts = attemptId is { } id ? [new HeldAttempt { AttemptId = id, Completed = completed, Total = 80, DeviceSeconds = deviceSeconds, Log = log ?? [] }] : [],
        });
        return response.Message;
    }

    public static DeviceUsage Usage(double deviceSeconds) =>
        new() { DeviceSku = "cpu", DeviceCount = 1, DeviceSeconds = deviceSeconds, EnergyJoules = 0, EnergyEstimated = true };

    /// <summary>A worker's report of one success, as it publishes it.</summary>
    public static TasksSucceeded Succeeded(Guid attemptId, double deviceSeconds, string workerId = "worker-x", string[]? outputs = null) => new()
    {
        Reports =
        [
            new TaskSucceeded
            {
                AttemptId = attemptId,
                WorkerId = workerId,
                ReportedAt = DateTime.UtcNow,
                Usage = Usage(deviceSeconds),
                Outputs = outputs ?? [],
            },
        ],
    };

    public static TaskFailed Failed(Guid attemptId, double deviceSeconds, string classification, string reason, string workerId = "worker-x") => new()
    {
        AttemptId = attemptId,
        WorkerId = workerId,
        ReportedAt = DateTime.UtcNow,
        Usage = Usage(deviceSeconds),
        Classification = classification,
        Reason = reason,
    };

    /// <summary>Polls the farm database until <paramref name="done"/> holds (30 s deadline unless given); returns the last value.</summary>
    public async Task<T> WaitForAsync<T>(Func<FarmDbContext, Task<T>> query, Func<T, bool> done, TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            await using var db = farm.CreateDbContext();
            var value = await query(db);
            if (done(value))
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < deadline, $"condition not reached in {limit.TotalSeconds} s; last value: {value}");
            await Task.Delay(100);
        }
    }

    /// <summary>Waits until every event published so far has been handled by the coordinator, and none of them faulted.</summary>
    public async Task WaitUntilEventsHandledAsync()
    {
        await BrokerQueues.WaitUntilHandledAsync(TaskSucceededQueue, TaskFailedQueue);
        Assert.Empty(await BrokerQueues.FaultedAsync(farm.QueuePrefix));
    }
}
