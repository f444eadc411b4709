using ProgrammableFilm.Coordinator;
using Spectre.Console;

namespace ProgrammableFilm.Cli;

/// <summary>Polls a job until it ends, drawing a progress bar per shot.</summary>
public static class JobProgressView
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    public static async Task<JobStatus> WaitAsync(Func<CancellationToken, Task<JobStatus?>> poll, CancellationToken cancellationToken)
    {
        var first = await poll(cancellationToken) ?? throw new InvalidOperationException("the job disappeared");
        if (IsFinished(first))
        {
            return first;
        }

        JobStatus last = first;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var bars = first.Shots.ToDictionary(s => s.Id, s => context.AddTask(Markup.Escape(s.Name), maxValue: 1.0));
                while (true)
                {
                    foreach (var shot in last.Shots)
                    {
                        bars[shot.Id].Value = shot.Progress;
                        bars[shot.Id].Description = Markup.Escape(last.State == "Planning"
                            ? $"{shot.Name} planning: job {last.TasksPlanned}/{last.TasksTotal} tasks written"
                            : $"{shot.Name} {shot.TasksSucceeded}/{shot.TasksTotal} tasks");
                    }

                    if (IsFinished(last))
                    {
                        return;
                    }

                    await Task.Delay(PollInterval, cancellationToken);
                    last = await poll(cancellationToken) ?? last;
                }
            });
        return last;
    }

    private static bool IsFinished(JobStatus status) => status.State is "Succeeded" or "Failed" or "Cancelled";
}
