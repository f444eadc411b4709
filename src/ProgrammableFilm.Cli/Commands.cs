using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Storage;
using Spectre.Console;

namespace ProgrammableFilm.Cli;

/// <summary>Exit codes a CI system can act on.</summary>
public static class ExitCodes
{
    public const int Succeeded = 0;
    public const int JobFailed = 1;
    public const int InvalidInput = 2;
    public const int ServerError = 3;
    public const int NotFound = 4;
    public const int NotAllowed = 5;
    public const int JobCancelled = 6;
    public const int AccessDenied = 7;
    public const int Cancelled = 130;
}

public static class Commands
{
    public static Command Render()
    {
        var file = new Argument<FileInfo>("file") { Description = "A shot spec (YAML)." };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for renders and the embedded database.", DefaultValueFactory = _ => new DirectoryInfo("renders") };
        var workers = new Option<int>("--workers") { Description = "In-process worker slots.", DefaultValueFactory = _ => 1 };
        var diffusionEngine = new Option<string>("--diffusion-engine")
        {
            Description = "Implementation of the diffusion engine: native (C#, the CPU path), torch (TorchSharp: CUDA when present, else CPU) or auto (torch with a GPU, else native).",
            DefaultValueFactory = _ => "auto",
        };
        diffusionEngine.AcceptOnlyFromAmong("auto", "native", "torch");
        var preview = new Option<bool>("--preview") { Description = "Render a cheap preview: half size, a quarter of the steps, every 4th frame." };
        var command = new Command("render", "Render a spec on this machine (embedded mode: SQLite, in-memory bus, in-process workers; no server, no key).") { file, output, workers, diffusionEngine, preview };
        command.SetAction((parse, cancellationToken) => Guard(() => RenderAsync(parse.GetValue(file)!, parse.GetValue(output)!, parse.GetValue(workers), parse.GetValue(diffusionEngine)!, parse.GetValue(preview), cancellationToken)));
        return command;
    }

    public static Command Submit()
    {
        var file = new Argument<FileInfo>("file") { Description = "A shot spec (YAML)." };
        var server = ServerOption();
        var apiKey = ApiKeyOption();
        var wait = new Option<bool>("--wait") { Description = "Wait for the job to finish, showing progress; exit non-zero if it fails." };
        var preview = new Option<bool>("--preview") { Description = "Render a cheap preview: half size, a quarter of the steps, every 4th frame, in the preview lane." };
        var command = new Command("submit", "Submit a spec to a farm.") { file, server, apiKey, wait, preview };
        command.SetAction((parse, cancellationToken) => Guard(() => SubmitAsync(parse.GetValue(file)!, Client(parse, server, apiKey, TimeSpan.FromSeconds(60)), parse.GetValue(wait), parse.GetValue(preview), cancellationToken)));
        return command;
    }

    public static Command Status()
    {
        var job = new Argument<Guid>("job") { Description = "The job id." };
        var server = ServerOption();
        var apiKey = ApiKeyOption();
        var command = new Command("status", "Show a job's state, progress and cost.") { job, server, apiKey };
        command.SetAction((parse, cancellationToken) => Guard(() => StatusAsync(parse.GetValue(job), Client(parse, server, apiKey, TimeSpan.FromSeconds(30)), cancellationToken)));
        return command;
    }

    public static Command Wait()
    {
        var job = new Argument<Guid>("job") { Description = "The job id (from `pfilm submit`)." };
        var server = ServerOption();
        var apiKey = ApiKeyOption();
        var command = new Command("wait", "Wait for a submitted job to finish, showing progress; exit 0 only if it succeeded.") { job, server, apiKey };
        command.SetAction((parse, cancellationToken) => Guard(() => WaitAsync(parse.GetValue(job), Client(parse, server, apiKey, TimeSpan.FromSeconds(60)), cancellationToken)));
        return command;
    }

    internal static Option<Uri> ServerOption() => new("--server")
    {
        Description = "The farm's API address, e.g. http://127.0.0.1:5080 (default: $PFILM_SERVER).",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("PFILM_SERVER") is { Length: > 0 } server ? ParseServer(server) : null!,
        Required = Environment.GetEnvironmentVariable("PFILM_SERVER") is not { Length: > 0 },
        CustomParser = result => ParseServer(result.Tokens.Single().Value, result),
    };

    internal static Option<string?> ApiKeyOption() => new("--api-key")
    {
        Description = $"The API key (default: ${FarmClient.ApiKeyVariable}; prefer the variable: a command line is visible to other users).",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(FarmClient.ApiKeyVariable),
    };

    /// <summary>An HTTP client for the command's farm and key; the command disposes it.</summary>
    internal static HttpClient Client(System.CommandLine.ParseResult parse, Option<Uri> server, Option<string?> apiKey, TimeSpan timeout) =>
        FarmClient.Create(parse.GetValue(server)!, parse.GetValue(apiKey), timeout);

    private static Uri ParseServer(string text, System.CommandLine.Parsing.ArgumentResult? result = null)
    {
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
        {
            return uri;
        }

        result?.AddError($"--server '{text}' is not an http(s) address such as http://127.0.0.1:5080");
        return null!;
    }

    private static async Task<int> RenderAsync(FileInfo file, DirectoryInfo output, int workers, string diffusionEngine, bool preview, CancellationToken cancellationToken)
    {
        if (workers < 1)
        {
            return Fail(ExitCodes.InvalidInput, "--workers must be at least 1");
        }

        if (!TryReadSpec(file, out var spec, out var exitCode))
        {
            return exitCode;
        }

        if (preview && !spec.Preview)
        {
            spec = PreviewPolicy.Apply(spec);
        }

        using var host = await EmbeddedFarm.StartAsync(output.FullName, workers, cancellationToken, diffusionEngine);
        try
        {
            Data.Entities.Job job;
            var plates = new List<Guid>();
            var written = spec;
            try
            {
                spec = await LocalPlates.IngestAsync(host, spec, file.Directory!, plates, cancellationToken);
                job = await host.Services.GetRequiredService<JobSubmission>().SubmitAsync(spec, cancellationToken);
            }
            catch (SpecRejectedException e)
            {
                await LocalPlates.DiscardAsync(host, plates, cancellationToken);
                return Fail(ExitCodes.InvalidInput, $"{file.Name} is invalid: {string.Join("; ", e.Errors.Select(error => $"{LocalPlates.FieldAsWritten(error.Field, written)}: {error.Message}"))}");
            }
            catch (Coordinator.Plates.PlateRejectedException e)
            {
                await LocalPlates.DiscardAsync(host, plates, cancellationToken);
                return Fail(ExitCodes.InvalidInput, $"{file.Name} is invalid: {e.Field}: {e.Message}");
            }

            return await WaitLocallyAsync(host, job, spec.Shots.Count, cancellationToken);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>Follows a job rendering in the embedded farm, then prints where its files are and what it cost.</summary>
    internal static async Task<int> WaitLocallyAsync(Microsoft.Extensions.Hosting.IHost host, Data.Entities.Job job, int shots, CancellationToken cancellationToken)
    {
        var reports = host.Services.GetRequiredService<JobReports>();
        AnsiConsole.MarkupLineInterpolated($"Rendering job [bold]{job.Id}[/] ({shots} shot(s)) on this machine");
        var status = await JobProgressView.WaitAsync(ct => reports.StatusAsync(job.Id, ct), cancellationToken);
        var cost = await reports.CostAsync(job.Id, cancellationToken);
        var storage = host.Services.GetRequiredService<ShotStorage>();
        PrintOutcome(status, cost, relative => storage.FullPath(relative), storage.FullPath(ShotStorage.CostSummaryPath(job.Id)));
        foreach (var sheet in status.Shots.Select(s => s.Name.Split('#')[0]).Distinct(StringComparer.Ordinal).Select(name => ShotStorage.ContactSheetPath(job.Id, name)).Where(storage.Exists))
        {
            Console.WriteLine($"Takes side by side: {storage.FullPath(sheet)}");
        }

        return Outcome(status);
    }

    private static async Task<int> SubmitAsync(FileInfo file, HttpClient client, bool wait, bool preview, CancellationToken cancellationToken)
    {
        using var http = client;
        if (!TryReadSpec(file, out var spec, out var exitCode))
        {
            return exitCode;
        }

        using var content = new StringContent(await File.ReadAllTextAsync(file.FullName, cancellationToken), System.Text.Encoding.UTF8, "application/yaml");
        using var response = await http.PostAsync(new Uri($"api/projects/{Uri.EscapeDataString(spec.Project)}/jobs{(preview ? "?preview=true" : "")}", UriKind.Relative), content, cancellationToken);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return Fail(ExitCodes.NotFound, $"there is no project {spec.Project} for this key on {http.BaseAddress}");
        }

        if (!response.IsSuccessStatusCode)
        {
            return Fail((int)response.StatusCode == 400 ? ExitCodes.InvalidInput : ExitCodes.ServerError, $"the server refused the job: {await ProblemText(response, cancellationToken)}");
        }

        var submitted = (await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options, cancellationToken))!;
        Console.WriteLine($"Submitted job {submitted.Id}{(preview ? " (preview)" : "")}");
        if (!wait)
        {
            return ExitCodes.Succeeded;
        }

        return await WaitForOutcomeAsync(http, submitted.Id, cancellationToken);
    }

    private static async Task<int> WaitAsync(Guid jobId, HttpClient client, CancellationToken cancellationToken)
    {
        using var http = client;
        if (await GetStatusAsync(http, jobId, cancellationToken) is null)
        {
            return Fail(ExitCodes.NotFound, $"there is no job {jobId} on {http.BaseAddress}");
        }

        return await WaitForOutcomeAsync(http, jobId, cancellationToken);
    }

    private static async Task<int> WaitForOutcomeAsync(HttpClient http, Guid jobId, CancellationToken cancellationToken)
    {
        var status = await JobProgressView.WaitAsync(ct => GetStatusAsync(http, jobId, ct), cancellationToken);
        var cost = await http.GetFromJsonAsync<JobCost>(new Uri($"api/jobs/{jobId}/cost", UriKind.Relative), SpecJson.Options, cancellationToken);
        PrintOutcome(status, cost, relative => relative, null);
        foreach (var shot in status.Shots.Where(s => s.Video is not null))
        {
            Console.WriteLine($"MP4 {shot.Name}: {new Uri(http.BaseAddress!, $"api/shots/{shot.Id}/video")}");
        }

        if (cost is not null)
        {
            Console.WriteLine($"Cost: ${cost.Cost.ToString("F6", CultureInfo.InvariantCulture)} for {cost.DeviceSeconds.ToString("F1", CultureInfo.InvariantCulture)} device-seconds in {cost.Attempts} attempt(s)");
        }

        return Outcome(status);
    }

    /// <summary>The CI contract: 0 only for a job that succeeded.</summary>
    internal static int Outcome(JobStatus status) => status.State switch
    {
        "Succeeded" => ExitCodes.Succeeded,
        "Cancelled" => Fail(ExitCodes.JobCancelled, $"job {status.Id} was cancelled: {status.Error}"),
        _ => Fail(ExitCodes.JobFailed, $"job {status.Id} failed: {status.Error}"),
    };

    private static async Task<int> StatusAsync(Guid jobId, HttpClient client, CancellationToken cancellationToken)
    {
        using var http = client;
        var status = await GetStatusAsync(http, jobId, cancellationToken);
        if (status is null)
        {
            return Fail(ExitCodes.NotFound, $"there is no job {jobId} on {http.BaseAddress}");
        }

        PrintStatus(status);
        return status.State == "Failed" ? ExitCodes.JobFailed : ExitCodes.Succeeded;
    }

    private static async Task<JobStatus?> GetStatusAsync(HttpClient http, Guid jobId, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(new Uri($"api/jobs/{jobId}", UriKind.Relative), cancellationToken);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }

        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"GET /api/jobs/{jobId}: {await ProblemText(response, cancellationToken)}");
        }

        return await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options, cancellationToken);
    }

    internal static bool TryReadSpec(FileInfo file, out JobSpec spec, out int exitCode)
    {
        spec = null!;
        exitCode = ExitCodes.InvalidInput;
        if (!file.Exists)
        {
            Fail(exitCode, $"{file.FullName} does not exist");
            return false;
        }

        var result = JobSpecReader.ReadYaml(File.ReadAllText(file.FullName));
        if (!result.IsValid)
        {
            Fail(exitCode, $"{file.Name} is invalid: {string.Join("; ", result.Errors.Select(e => $"{e.Field}: {e.Message}"))}");
            return false;
        }

        spec = result.Spec!;
        return true;
    }

    private static void PrintOutcome(JobStatus status, JobCost? cost, Func<string, string> locate, string? costSummary)
    {
        foreach (var shot in status.Shots)
        {
            AnsiConsole.MarkupLineInterpolated($"[bold]{shot.Name}[/]: {shot.State}{(shot.Error is null ? "" : $" ({shot.Error})")}");
            if (shot.Video is not null)
            {
                Console.WriteLine($"  MP4:      {locate(shot.Video)}");
            }

            if (shot.Manifest is not null)
            {
                Console.WriteLine($"  manifest: {locate(shot.Manifest)}");
            }
        }

        if (cost is not null)
        {
            var table = new Table().AddColumns("shot", "attempts", "device-seconds", "energy (kWh)", "CO2e (g)", "cost (USD)");
            foreach (var shot in cost.Shots)
            {
                table.AddRow(shot.Name, shot.Attempts.ToString(CultureInfo.InvariantCulture), shot.DeviceSeconds.ToString("F2", CultureInfo.InvariantCulture), shot.EnergyKilowattHours.ToString("F6", CultureInfo.InvariantCulture), shot.Co2eGrams.ToString("F3", CultureInfo.InvariantCulture), shot.Cost.ToString("F6", CultureInfo.InvariantCulture));
            }

            table.AddRow("[bold]total[/]", cost.Attempts.ToString(CultureInfo.InvariantCulture), cost.DeviceSeconds.ToString("F2", CultureInfo.InvariantCulture), cost.EnergyKilowattHours.ToString("F6", CultureInfo.InvariantCulture), cost.Co2eGrams.ToString("F3", CultureInfo.InvariantCulture), $"[bold]{cost.Cost.ToString("F6", CultureInfo.InvariantCulture)}[/]");
            AnsiConsole.Write(table);
        }

        if (costSummary is not null)
        {
            Console.WriteLine($"Cost summary: {costSummary}");
        }
    }

    internal static void PrintStatus(JobStatus status)
    {
        AnsiConsole.MarkupLineInterpolated($"Job [bold]{status.Id}[/] ({status.Project}, {status.Lane}): {status.State}, {status.Progress:P0}, {status.TasksSucceeded}/{status.TasksTotal} tasks, ${status.Cost.ToString("F6", CultureInfo.InvariantCulture)}");
        if (status.WaitingFor == "budget")
        {
            Console.WriteLine($"Waiting: project {status.Project} reached its budget; nothing new is dispatched until it is raised (pfilm budget {status.Project} --limit USD)");
        }
        else if (status.WaitingFor == "job-budget")
        {
            Console.WriteLine($"Waiting: the job reached its own budget; nothing new is dispatched until it is raised (pfilm budget --job {status.Id} --limit USD)");
        }

        if (status.State == "Planning")
        {
            Console.WriteLine($"Planning: {status.TasksPlanned}/{status.TasksTotal} tasks written; nothing is dispatched until every shot is planned");
        }

        var table = new Table().AddColumns("shot", "engine", "state", "progress", "frames", "cost (USD)", "video");
        foreach (var shot in status.Shots)
        {
            table.AddRow(Markup.Escape(shot.Name), shot.Engine, shot.State, shot.Progress.ToString("P0", CultureInfo.InvariantCulture), shot.FrameCount.ToString(CultureInfo.InvariantCulture), shot.Cost.ToString("F6", CultureInfo.InvariantCulture), Markup.Escape(shot.Video ?? ""));
        }

        AnsiConsole.Write(table);
        if (status.Error is not null)
        {
            Console.WriteLine($"Error: {status.Error}");
        }
    }

    internal static async Task<string> ProblemText(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        try
        {
            using var problem = JsonDocument.Parse(body);
            var root = problem.RootElement;
            if (root.TryGetProperty("detail", out var detail) && detail.GetString() is { Length: > 0 } text)
            {
                return text;
            }

            return root.TryGetProperty("title", out var title) ? title.GetString() ?? body : body;
        }
        catch (JsonException)
        {
            return $"{(int)response.StatusCode} {response.ReasonPhrase}";
        }
    }

    /// <summary>Turns every expected failure into one line and an exit code: a CI log should never show a stack trace.</summary>
    internal static async Task<int> Guard(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (OperationCanceledException)
        {
            return Fail(ExitCodes.Cancelled, "cancelled");
        }
        catch (AccessDeniedException e)
        {
            return Fail(ExitCodes.AccessDenied, e.Message);
        }
        catch (HttpRequestException e)
        {
            return Fail(ExitCodes.ServerError, $"cannot talk to the server: {e.Message}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or Microsoft.Data.Sqlite.SqliteException or Microsoft.EntityFrameworkCore.DbUpdateException)
        {
            return Fail(ExitCodes.ServerError, (e.InnerException ?? e).Message);
        }
    }

    internal static int Fail(int exitCode, string message)
    {
        Console.Error.WriteLine($"pfilm: {message}");
        return exitCode;
    }
}
