using System.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Trace;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data;
using ProgrammableFilm.Worker;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// The API (WebApplicationFactory) and a worker host in this process, on the real PostgreSQL and RabbitMQ, both
/// composed as in production (<c>AddServiceDefaults</c>, <c>AddWorkerProcess</c>); an in-memory exporter added to
/// the API's tracer provider records every span of both (activity listeners are process-wide).
/// </summary>
public sealed class TracedFarmFixture : IAsyncLifetime
{
    public List<Activity> Spans { get; } = [];

    public WebApplicationFactory<Program> Api { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public string ConnectionString { get; private set; } = "";

    private IHost _worker = null!;
    private readonly string _storage = TestEnvironment.CreateTemporaryFolder("pfilm-traced");
    private readonly string _prefix = $"tr{Guid.NewGuid().ToString("N")[..8]}-";

    public async Task InitializeAsync()
    {
        ConnectionString = await TestEnvironment.CreateDatabaseAsync("pfilm_trace");
        var services = new ServiceCollection().AddFarmData(new DatabaseOptions(DatabaseProvider.Postgres, ConnectionString)).BuildServiceProvider();
        await using (services)
        {
            await services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
        }

        Api = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            builder.UseSetting("Database:ConnectionString", ConnectionString);
            builder.UseSetting("RabbitMq:Uri", TestEnvironment.RabbitMq);
            builder.UseSetting("RabbitMq:Prefix", _prefix);
            builder.UseSetting("Storage:Root", _storage);
            builder.UseSetting("Coordinator:PollInterval", "00:00:00.250");
            builder.ConfigureTestServices(s => s.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(Spans)));
        });
        Http = Api.CreateClient().WithKey(await TestKeys.CreateAsync(ConnectionString));

        var worker = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        worker.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["RabbitMq:Uri"] = TestEnvironment.RabbitMq,
            ["RabbitMq:Prefix"] = _prefix,
            ["Storage:Root"] = _storage,
            ["Worker:Id"] = "traced-worker",
            ["Worker:DeviceCount"] = "1",
        });
        worker.AddWorkerProcess();
        _worker = worker.Build();
        await _worker.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _worker.StopAsync();
        _worker.Dispose();
        Http.Dispose();
        await Api.DisposeAsync();
        Directory.Delete(_storage, recursive: true);
    }

    public FarmDbContext CreateDbContext() =>
        TestEnvironment.CreateDbContext(ConnectionString);

    public List<Activity> Snapshot()
    {
        Api.Services.GetRequiredService<TracerProvider>().ForceFlush();
        lock (Spans)
        {
            return [.. Spans];
        }
    }
}

/// <summary>
/// One trace per task attempt, linked to its job: the dispatcher's span starts the attempt's trace with a link to the
/// submitting request, and the worker's run of the attempt continues it. The messages that carry attempts (a bundle,
/// a report of several successes) are traced on their own, linked to each attempt's trace: under the bundle's span
/// MassTransit's send, the worker's consume and its claim request; under the report's span its publish and the
/// coordinator's handling of it.
/// </summary>
public sealed class AttemptTraceTests(TracedFarmFixture farm) : IClassFixture<TracedFarmFixture>
{
    private const string ShotYaml = """
        project: it-traces
        shots:
          - name: traced
            prompt: a green kite over a beach at dawn
            duration: 1
            fps: 12
            width: 64
            height: 64
            seed: 5
            engine: procedural
            keyframeInterval: 6
        """;

    [Fact]
    public async Task Each_attempt_is_one_connected_trace_from_the_dispatcher_to_the_worker_engine_linked_to_the_submitting_request()
    {
        var jobId = await FarmChecks.SubmitAsync(farm.Http, "it-traces", ShotYaml);
        await FarmChecks.WaitForJobAsync(farm.Http, jobId, "Succeeded", TimeSpan.FromMinutes(2), () => "");
        await using var db = farm.CreateDbContext();
        var attempts = await db.Attempts.AsNoTracking().Join(db.Tasks.Where(t => t.JobId == jobId), a => a.TaskId, t => t.Id, (a, t) => new { a.Id, t.Kind }).ToListAsync();
        Assert.Equal(6, attempts.Count); // keyframes 0, 6, 11; two segments; assembly

        string Dump(IEnumerable<Activity> of) => string.Join('\n', of.OrderBy(s => s.StartTimeUtc).Select(s => $"{s.TraceId} {s.SpanId} <- {s.ParentSpanId} {s.Kind} {s.Source.Name}: {s.DisplayName} [{string.Join(", ", s.TagObjects.Select(t => $"{t.Key}={t.Value}"))}]"));

        // The message span (of the given name) linked to the dispatch span, and its trace.
        List<Activity> Carrier(List<Activity> all, Activity dispatch, string name) =>
            all.FirstOrDefault(s => s.DisplayName == name && s.Links.Any(l => l.Context.TraceId == dispatch.TraceId && l.Context.SpanId == dispatch.SpanId)) is { } carrier
                ? [.. all.Where(s => s.TraceId == carrier.TraceId)]
                : [];

        // The coordinator's handling of the last report may end just after the job's state is visible.
        List<Activity> spans = [];
        var deadline = DateTime.UtcNow.AddSeconds(20);
        bool AllReportsHandled() => spans.Where(s => s.Source.Name == FarmMetrics.ActivitySourceName && Equals(s.GetTagItem("pfilm.job.id"), jobId))
            .All(dispatch => Carrier(spans, dispatch, "report successes").Any(IsReportHandled));
        do
        {
            await Task.Delay(200);
            spans = farm.Snapshot();
        }
        while (DateTime.UtcNow < deadline && !AllReportsHandled());

        var submit = Assert.Single(spans, s => s.Kind == ActivityKind.Server && s.DisplayName.StartsWith("POST", StringComparison.Ordinal)
            && Equals(s.GetTagItem("http.route"), "/api/projects/{project}/jobs"));
        var dispatches = spans.Where(s => s.Source.Name == FarmMetrics.ActivitySourceName && Equals(s.GetTagItem("pfilm.job.id"), jobId) && s.DisplayName.StartsWith("dispatch ", StringComparison.Ordinal)).ToList();
        Assert.True(attempts.Count == dispatches.Count, $"one dispatch span per attempt:\n{Dump(dispatches)}");
        Assert.Equal(attempts.Count, dispatches.Select(d => d.TraceId).Distinct().Count());

        foreach (var dispatch in dispatches)
        {
            var attemptId = (Guid)dispatch.GetTagItem("pfilm.attempt.id")!;
            Assert.Contains(attempts, a => a.Id == attemptId);
            Assert.Equal(default, dispatch.ParentSpanId);
            Assert.NotEqual(submit.TraceId, dispatch.TraceId);
            Assert.Contains(dispatch.Links, link => link.Context.TraceId == submit.TraceId && link.Context.SpanId == submit.SpanId);

            var trace = spans.Where(s => s.TraceId == dispatch.TraceId).ToList();
            var bySpan = trace.ToDictionary(s => s.SpanId);
            foreach (var span in trace)
            {
                // Connected: every span of the trace reaches the dispatch span through its parents.
                var walk = span;
                while (walk.ParentSpanId != default && bySpan.TryGetValue(walk.ParentSpanId, out var parent))
                {
                    walk = parent;
                }

                Assert.True(walk == dispatch, $"span {span.DisplayName} is not under the dispatch span:\n{Dump(trace)}");
            }

            var run = Assert.Single(trace, s => s.Source.Name == WorkerTelemetry.ActivitySourceName);
            Assert.Equal(attemptId, run.GetTagItem("pfilm.attempt.id"));
            Assert.Equal("traced-worker", run.GetTagItem("pfilm.worker.id"));

            var bundle = Carrier(spans, dispatch, "send bundle");
            Assert.True(bundle.Any(s => s.Source.Name == "MassTransit" && s.Kind == ActivityKind.Producer), $"MassTransit's send of the attempt's bundle:\n{Dump(bundle)}");
            Assert.True(bundle.Any(s => s.Source.Name == "MassTransit" && s.Kind == ActivityKind.Consumer && s.DisplayName.Contains("render-cpu", StringComparison.Ordinal)), $"the worker's consume of the bundle:\n{Dump(bundle)}");
            Assert.True(bundle.Any(s => s.Source.Name == "MassTransit" && s.DisplayName.Contains("claim-attempt", StringComparison.Ordinal)), $"the claim request:\n{Dump(bundle)}");
            var report = Carrier(spans, dispatch, "report successes");
            Assert.True(report.Any(IsReportHandled), $"the coordinator's handling of the worker's report:\n{Dump(report)}");
        }
    }

    private static bool IsReportHandled(Activity span) =>
        span.Source.Name == "MassTransit" && span.Kind == ActivityKind.Consumer && span.DisplayName.Contains("task-succeeded", StringComparison.Ordinal);
}
