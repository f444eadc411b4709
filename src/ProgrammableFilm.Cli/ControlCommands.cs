using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using ProgrammableFilm.Coordinator;
using Spectre.Console;

namespace ProgrammableFilm.Cli;

/// <summary><c>pfilm cancel|pause|resume|retry JOB</c> and <c>pfilm logs JOB</c>: job control against a farm.</summary>
public static class ControlCommands
{
    public static IEnumerable<Command> All() =>
    [
        Control("cancel", "Cancel a job (or, with --shot, one shot): running attempts stop between sampler steps; outputs are kept."),
        Control("pause", "Pause a job: nothing new is dispatched; running attempts finish."),
        Control("resume", "Resume a paused job."),
        Control("retry", "Run a failed or cancelled job again: only its unfinished tasks."),
        Logs(),
    ];

    private static Command Control(string verb, string description)
    {
        var job = new Argument<Guid>("job") { Description = "The job id (with --shot: the shot id)." };
        var server = Commands.ServerOption();
        var command = new Command(verb, description) { job, server };
        Option<bool>? shot = null;
        if (verb == "cancel")
        {
            shot = new Option<bool>("--shot") { Description = "The id is a shot's: cancel only that shot." };
            command.Options.Add(shot);
        }

        command.SetAction((parse, cancellationToken) => Commands.Guard(() =>
        {
            var id = parse.GetValue(job);
            var path = shot is not null && parse.GetValue(shot) ? $"api/shots/{id}/cancel" : $"api/jobs/{id}/{verb}";
            return PostAsync(parse.GetValue(server)!, path, verb, id, cancellationToken);
        }));
        return command;
    }

    private static async Task<int> PostAsync(Uri server, string path, string verb, Guid id, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };
        using var response = await http.PostAsync(new Uri(path, UriKind.Relative), null, cancellationToken);
        switch (response.StatusCode)
        {
            case HttpStatusCode.NotFound:
                return Commands.Fail(ExitCodes.NotFound, $"there is no {(path.StartsWith("api/shots", StringComparison.Ordinal) ? "shot" : "job")} {id} on {server}");
            case HttpStatusCode.Conflict:
                return Commands.Fail(ExitCodes.NotAllowed, $"cannot {verb}: {await Commands.ProblemText(response, cancellationToken)}");
            case var status when !response.IsSuccessStatusCode:
                return Commands.Fail(ExitCodes.ServerError, $"{verb} failed ({(int)status}): {await Commands.ProblemText(response, cancellationToken)}");
        }

        if (path.StartsWith("api/jobs", StringComparison.Ordinal) && await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options, cancellationToken) is { } job)
        {
            Commands.PrintStatus(job);
        }
        else
        {
            Console.WriteLine($"Shot {id}: {verb} done");
        }

        return ExitCodes.Succeeded;
    }

    private static Command Logs()
    {
        var job = new Argument<Guid>("job") { Description = "The job id." };
        var task = new Option<string?>("--task") { Description = "Only this task (its key, e.g. kf-00012 or assemble)." };
        var attempt = new Option<int?>("--attempt") { Description = "Only this attempt number of each task." };
        var server = Commands.ServerOption();
        var command = new Command("logs", "Show the log lines of a job's attempts (engine progress, warnings, the exception of a failure).") { job, task, attempt, server };
        command.SetAction((parse, cancellationToken) => Commands.Guard(() => LogsAsync(parse.GetValue(server)!, parse.GetValue(job), parse.GetValue(task), parse.GetValue(attempt), cancellationToken)));
        return command;
    }

    private static async Task<int> LogsAsync(Uri server, Guid jobId, string? task, int? attempt, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };
        var query = new List<string>();
        if (task is not null)
        {
            query.Add($"task={Uri.EscapeDataString(task)}");
        }

        if (attempt is { } number)
        {
            query.Add($"attempt={number.ToString(CultureInfo.InvariantCulture)}");
        }

        // The server pages a job's logs; follow the pages so that the output is the whole log, printed as it arrives.
        var printed = 0;
        string? after = null;
        do
        {
            var page = new List<string>(query);
            if (after is not null)
            {
                page.Add($"after={Uri.EscapeDataString(after)}");
            }

            using var response = await http.GetAsync(new Uri($"api/jobs/{jobId}/logs{(page.Count > 0 ? "?" + string.Join('&', page) : "")}", UriKind.Relative), cancellationToken);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return Commands.Fail(ExitCodes.NotFound, $"there is no job {jobId} on {server}");
            }

            if (!response.IsSuccessStatusCode)
            {
                return Commands.Fail(ExitCodes.ServerError, $"logs failed: {await Commands.ProblemText(response, cancellationToken)}");
            }

            var logs = await response.Content.ReadFromJsonAsync<LogPage>(SpecJson.Options, cancellationToken);
            foreach (var log in logs?.Attempts ?? [])
            {
                AnsiConsole.MarkupLineInterpolated($"[bold]{log.Task} attempt {log.Attempt}[/] ({log.State}{(log.Worker is null ? "" : $" on {log.Worker}")}){(log.Error is null ? "" : $": {log.Error}")}");
                foreach (var line in log.Lines)
                {
                    Console.WriteLine($"  {line.At:HH:mm:ss.fff} {line.Level,-7} {line.Message}");
                }

                printed++;
            }

            after = logs?.Next;
        }
        while (after is not null);

        if (printed == 0)
        {
            return Commands.Fail(ExitCodes.NotFound, $"job {jobId} has no attempt{(task is null ? "" : $" of task {task}")}{(attempt is null ? "" : $" numbered {attempt}")}");
        }

        return ExitCodes.Succeeded;
    }
}
