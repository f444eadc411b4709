using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Contract = ProgrammableFilm.Contracts;

namespace ProgrammableFilm.Worker;

/// <summary>
/// The worker's own span (the engine run of one attempt, a child of MassTransit's consume span, so it sits in the
/// attempt's trace) and gauges (meter <see cref="MeterName"/>): slots and attempts running. The farm-wide figures
/// (utilisation per pool, device time, cost) come from the coordinator, which sees every worker.
/// </summary>
public sealed class WorkerTelemetry : IHostedService
{
    public const string MeterName = "ProgrammableFilm.Worker";

    public const string ActivitySourceName = "ProgrammableFilm.Worker";

    public static readonly ActivitySource Tracing = new(ActivitySourceName);

    public WorkerTelemetry(IMeterFactory meterFactory, RunningAttempts running, WorkerOptions options)
    {
        var meter = meterFactory.Create(MeterName);
        KeyValuePair<string, object?>[] tags = [new("pool", options.Pool), new("worker", options.WorkerId)];
        meter.CreateObservableGauge("pfilm.worker.process.slots", () => new Measurement<int>(options.Slots, tags), "{slot}", "Attempts this worker runs at once.");
        meter.CreateObservableGauge("pfilm.worker.process.running", () => new Measurement<int>(running.Snapshot().Count, tags), "{attempt}", "Attempts this worker is running.");
    }

    /// <summary>The span of one attempt's run on the engine (or ffmpeg, for assembly).</summary>
    /// <summary>The run continues the attempt's own trace, begun by its dispatch (the bundle's message has a trace of its own).</summary>
    public static Activity? StartRun(Contract.RenderTask task, WorkerOptions options) =>
        Tracing.StartActivity($"run {task.Kind}", ActivityKind.Internal, task.TraceParent ?? Activity.Current?.Id)?
            .SetTag("pfilm.job.id", task.JobId)
            .SetTag("pfilm.task.id", task.TaskId)
            .SetTag("pfilm.attempt.id", task.AttemptId)
            .SetTag("pfilm.engine", task.Kind is "assemble" or "interpolate" ? "ffmpeg" : task.Engine)
            .SetTag("pfilm.frames", task.Frames.Length)
            .SetTag("pfilm.worker.id", options.WorkerId)
            .SetTag("pfilm.device.sku", options.DeviceSku);

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
