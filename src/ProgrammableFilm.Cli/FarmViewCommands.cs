using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using ProgrammableFilm.Coordinator;

namespace ProgrammableFilm.Cli;

/// <summary>
/// <c>pfilm jobs PROJECT</c>, <c>pfilm workers</c> and <c>pfilm share PROJECT</c>: what a farm is doing, one line per
/// job or worker, and how it shares the fleet between projects.
/// </summary>
public static class FarmViewCommands
{
    public static IEnumerable<Command> All() => [Jobs(), Workers(), Share()];

    private static Command Jobs()
    {
        var project = new Argument<string>("project") { Description = "The project whose jobs to list, newest first." };
        var limit = new Option<int>("--limit") { Description = "Jobs to show (1 to 200).", DefaultValueFactory = _ => 20 };
        var server = Commands.ServerOption();
        var command = new Command("jobs", "List a project's jobs, newest first.") { project, limit, server };
        command.SetAction((parse, cancellationToken) => Commands.Guard(() => JobsAsync(parse.GetValue(server)!, parse.GetValue(project)!, parse.GetValue(limit), cancellationToken)));
        return command;
    }

    private static async Task<int> JobsAsync(Uri server, string project, int limit, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > 200)
        {
            return Commands.Fail(ExitCodes.InvalidInput, "--limit must be 1 to 200");
        }

        using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };
        using var response = await http.GetAsync(new Uri($"api/projects/{Uri.EscapeDataString(project)}/jobs?limit={limit.ToString(CultureInfo.InvariantCulture)}", UriKind.Relative), cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            return Commands.Fail(ExitCodes.ServerError, $"jobs failed: {await Commands.ProblemText(response, cancellationToken)}");
        }

        var page = (await response.Content.ReadFromJsonAsync<JobPage>(SpecJson.Options, cancellationToken))!;
        // One line per job, not a table: CI logs are narrow and a wrapped id cannot be copied or grepped.
        foreach (var job in page.Jobs)
        {
            Console.WriteLine($"{job.Id}  {(job.Paused ? $"{job.State} (paused)" : job.State),-18} {job.Lane,-8} {job.CreatedAt.ToString("u", CultureInfo.InvariantCulture)}  {job.Name}");
        }

        Console.WriteLine($"{page.Jobs.Count} of {page.Total} job(s) in {project}");
        return ExitCodes.Succeeded;
    }

    private static Command Workers()
    {
        var server = Commands.ServerOption();
        var command = new Command("workers", "Show the fleet: each worker's pool, device, state (idle, busy, lost) and last contact.") { server };
        command.SetAction((parse, cancellationToken) => Commands.Guard(() => WorkersAsync(parse.GetValue(server)!, cancellationToken)));
        return command;
    }

    private static async Task<int> WorkersAsync(Uri server, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };
        var workers = await http.GetFromJsonAsync<List<WorkerStatus>>(new Uri("api/workers", UriKind.Relative), SpecJson.Options, cancellationToken) ?? [];
        foreach (var worker in workers)
        {
            var device = $"{worker.DeviceCount} × {worker.DeviceSku}{(worker.DeviceName is null ? "" : $" ({worker.DeviceName})")}";
            Console.WriteLine($"{worker.Id}  {worker.State,-5} {worker.RunningAttempts}/{worker.Slots} running  pool {worker.Pool}  {worker.DiffusionEngine ?? "-"}  {device}  last contact {worker.LastSeenAt.ToString("u", CultureInfo.InvariantCulture)}");
        }

        Console.WriteLine($"{workers.Count} worker(s): {workers.Count(w => w.State == "busy")} busy, {workers.Count(w => w.State == "idle")} idle, {workers.Count(w => w.State == "lost")} lost");
        return ExitCodes.Succeeded;
    }

    private static Command Share()
    {
        var project = new Argument<string>("project") { Description = "The project whose fair-share weight to show or set." };
        var weight = new Option<double?>("--weight") { Description = "Set the weight (above 0; 1 unless set): weights 3 and 1 give two busy projects 75% and 25% of the device time." };
        var server = Commands.ServerOption();
        var command = new Command("share", "Show or set a project's fair share of the fleet.") { project, weight, server };
        command.SetAction((parse, cancellationToken) => Commands.Guard(() => ShareAsync(parse.GetValue(server)!, parse.GetValue(project)!, parse.GetValue(weight), cancellationToken)));
        return command;
    }

    private static async Task<int> ShareAsync(Uri server, string project, double? weight, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };
        var uri = new Uri($"api/projects/{Uri.EscapeDataString(project)}/share", UriKind.Relative);
        using var response = weight is { } value
            ? await http.PutAsJsonAsync(uri, new { weight = value }, cancellationToken)
            : await http.GetAsync(uri, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            return Commands.Fail((int)response.StatusCode == 400 ? ExitCodes.InvalidInput : ExitCodes.ServerError, $"share failed: {await Commands.ProblemText(response, cancellationToken)}");
        }

        var share = (await response.Content.ReadFromJsonAsync<ProjectShareStatus>(SpecJson.Options, cancellationToken))!;
        Console.WriteLine($"{share.Project}: weight {share.Weight.ToString("0.###", CultureInfo.InvariantCulture)}, {share.LiveAttempts} of the fleet's {share.FleetLiveAttempts} live attempt(s)");
        return ExitCodes.Succeeded;
    }
}
