using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Takes;
using ProgrammableFilm.Domain.Specs;
using Spectre.Console;

namespace ProgrammableFilm.Cli;

/// <summary>
/// <c>pfilm takes|approve|reject|iterate</c>: compare a shot's takes and decide, against a farm (<c>--server</c>) or
/// a folder rendered on this machine (<c>--local renders</c>, as the farm's coordinator would, with no key: the
/// approver is the local user).
/// </summary>
public static class TakeCommands
{
    public static IEnumerable<Command> All() => [Takes(), Approve(), Reject(), Iterate()];

    private static Command Takes()
    {
        var take = new Argument<Guid>("shot") { Description = "Any take's id (pfilm status shows them)." };
        var (server, apiKey, local) = Target();
        var command = new Command("takes", "Show a shot's takes side by side: parameters, metrics, cost, review, the current version.") { take, server, apiKey, local };
        command.SetAction((parse, ct) => Commands.Guard(() => RunAsync(parse, server, apiKey, local,
            async http => await PrintAsync(await GetAsync(http, parse.GetValue(take), ct)),
            async takes => await PrintAsync(await takes.ListAsync(parse.GetValue(take), ct)), ct)));
        return command;
    }

    private static Command Approve()
    {
        var take = new Argument<Guid>("take") { Description = "The take to approve." };
        var note = new Option<string?>("--note") { Description = "Why (recorded with the approval)." };
        var rejectOthers = new Option<string?>("--reject-others") { Description = "Reject the shot's other pending takes with this note." };
        var (server, apiKey, local) = Target();
        var command = new Command("approve", "Approve a take: it becomes the shot's current version (a producer's key on a farm).") { take, note, rejectOthers, server, apiKey, local };
        command.SetAction((parse, ct) => Commands.Guard(() => RunAsync(parse, server, apiKey, local,
            http => ReviewAsync(http, $"api/shots/{parse.GetValue(take)}/approve", new { note = parse.GetValue(note), rejectOthers = parse.GetValue(rejectOthers) }, parse.GetValue(take), ct),
            async takes => InvalidNotes("approve", ReviewNotes.Check("--note", parse.GetValue(note), rejection: false, required: false).Concat(ReviewNotes.Check("--reject-others", parse.GetValue(rejectOthers), rejection: true, required: false)))
                ?? await ReviewedAsync(await takes.ApproveAsync(parse.GetValue(take), LocalReviewer, parse.GetValue(note), parse.GetValue(rejectOthers), ct), takes, parse.GetValue(take), ct), ct)));
        return command;
    }

    private static Command Reject()
    {
        var take = new Argument<Guid>("take") { Description = "The take to reject." };
        var note = new Option<string>("--note") { Description = "Why (required).", Required = true };
        var (server, apiKey, local) = Target();
        var command = new Command("reject", "Reject a take with a note.") { take, note, server, apiKey, local };
        command.SetAction((parse, ct) => Commands.Guard(() => RunAsync(parse, server, apiKey, local,
            http => ReviewAsync(http, $"api/shots/{parse.GetValue(take)}/reject", new { note = parse.GetValue(note) }, parse.GetValue(take), ct),
            async takes => InvalidNotes("reject", ReviewNotes.Check("--note", parse.GetValue(note), rejection: true, required: true))
                ?? await ReviewedAsync(await takes.RejectAsync(parse.GetValue(take), LocalReviewer, parse.GetValue(note)!, ct), takes, parse.GetValue(take), ct), ct)));
        return command;
    }

    private static Command Iterate()
    {
        var shot = new Argument<Guid>("shot") { Description = "Any take's id; the iteration starts from the shot's approved take." };
        var vary = new Option<string[]>("--vary") { Description = "A grid axis: PARAMETER=V1,V2,… (seed, guidance, steps, keyframeInterval, engine, promptFragment); repeat for more axes.", Required = true, AllowMultipleArgumentsPerToken = false };
        var wait = new Option<bool>("--wait") { Description = "Wait for the iteration to render (on a farm; --local always waits)." };
        var (server, apiKey, local) = Target();
        var command = new Command("iterate", "Render the next iteration: takes derived from the shot's approved take, one per grid point.") { shot, vary, wait, server, apiKey, local };
        command.SetAction((parse, ct) => Commands.Guard(async () =>
        {
            if (Grid(parse.GetValue(vary)!) is not { } grid)
            {
                return Commands.Fail(ExitCodes.InvalidInput, "--vary takes PARAMETER=V1,V2,… (e.g. --vary seed=1,2,3)");
            }

            var id = parse.GetValue(shot);
            if (parse.GetValue(local) is { } folder)
            {
                if (NoLocalRenders(folder) is { } missing)
                {
                    return missing;
                }

                using var host = await EmbeddedFarm.StartAsync(folder.FullName, 1, ct);
                try
                {
                    var (job, invalid, conflict) = await host.Services.GetRequiredService<TakeReviews>().IterateAsync(id, ToSpecNode(grid), null, null, false, ct);
                    return invalid is not null ? Commands.Fail(ExitCodes.InvalidInput, $"the iteration is invalid: {string.Join("; ", invalid.Errors.Select(e => $"{e.Field}: {e.Message}"))}")
                        : conflict is not null ? Commands.Fail(ExitCodes.NotAllowed, conflict)
                        : job is null ? Commands.Fail(ExitCodes.NotFound, $"there is no shot {id} in {folder.FullName}")
                        : await Commands.WaitLocallyAsync(host, job, 1, ct);
                }
                finally
                {
                    await host.StopAsync(CancellationToken.None);
                }
            }

            using var http = Commands.Client(parse, server, apiKey, TimeSpan.FromSeconds(60));
            var body = new JsonObject { ["variants"] = new JsonObject { ["grid"] = new JsonObject(grid.Select(axis => KeyValuePair.Create(axis.Key, (JsonNode?)new JsonArray([.. axis.Value.Select(Value)])))) } };
            using var response = await http.PostAsJsonAsync(new Uri($"api/shots/{id}/iterate", UriKind.Relative), body, ct);
            if (await Refused(response, id, "iterate", ct) is { } refused)
            {
                return refused;
            }

            var submitted = (await response.Content.ReadFromJsonAsync<JobStatus>(SpecJson.Options, ct))!;
            Console.WriteLine($"Submitted iteration job {submitted.Id}: {string.Join(", ", submitted.Shots.Select(s => s.Name))}");
            if (!parse.GetValue(wait))
            {
                return ExitCodes.Succeeded;
            }

            var status = await JobProgressView.WaitAsync(async c => await http.GetFromJsonAsync<JobStatus>(new Uri($"api/jobs/{submitted.Id}", UriKind.Relative), SpecJson.Options, c), ct);
            Commands.PrintStatus(status);
            return Commands.Outcome(status);
        }));
        return command;
    }

    private static Reviewer LocalReviewer => new(null, $"local:{Environment.UserName}");

    private static (Option<Uri> Server, Option<string?> ApiKey, Option<DirectoryInfo?> Local) Target()
    {
        var server = Commands.ServerOption();
        server.Required = false;
        var local = new Option<DirectoryInfo?>("--local") { Description = "A folder rendered on this machine (the --out of pfilm render) instead of a farm." };
        return (server, Commands.ApiKeyOption(), local);
    }

    private static async Task<int> RunAsync(ParseResult parse, Option<Uri> server, Option<string?> apiKey, Option<DirectoryInfo?> local, Func<HttpClient, Task<int>> farm, Func<TakeReviews, Task<int>> embedded, CancellationToken cancellationToken)
    {
        if (parse.GetValue(local) is { } folder)
        {
            if (NoLocalRenders(folder) is { } missing)
            {
                return missing;
            }

            using var host = await EmbeddedFarm.StartAsync(folder.FullName, 1, cancellationToken);
            try
            {
                return await embedded(host.Services.GetRequiredService<TakeReviews>());
            }
            finally
            {
                await host.StopAsync(CancellationToken.None);
            }
        }

        if (parse.GetValue(server) is null)
        {
            return Commands.Fail(ExitCodes.InvalidInput, "name a farm (--server or PFILM_SERVER) or a local render folder (--local renders)");
        }

        using var http = Commands.Client(parse, server, apiKey, TimeSpan.FromSeconds(30));
        return await farm(http);
    }

    /// <summary>A folder without a render database is a mistyped path: starting the embedded farm there would create one.</summary>
    private static int? NoLocalRenders(DirectoryInfo folder) => File.Exists(Path.Combine(folder.FullName, "pfilm.db"))
        ? null
        : Commands.Fail(ExitCodes.NotFound, $"{folder.FullName} holds no local renders (pfilm render --out {folder.Name})");

    private static async Task<ShotTakes?> GetAsync(HttpClient http, Guid id, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(new Uri($"api/shots/{id}/takes", UriKind.Relative), cancellationToken);
        return response.StatusCode == HttpStatusCode.NotFound ? null
            : response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<ShotTakes>(SpecJson.Options, cancellationToken)
            : throw new HttpRequestException($"GET takes: {await Commands.ProblemText(response, cancellationToken)}");
    }

    private static async Task<int> ReviewAsync(HttpClient http, string path, object body, Guid id, CancellationToken cancellationToken)
    {
        using var response = await http.PostAsJsonAsync(new Uri(path, UriKind.Relative), body, cancellationToken);
        return await Refused(response, id, path[(path.LastIndexOf('/') + 1)..], cancellationToken)
            ?? await PrintAsync(await response.Content.ReadFromJsonAsync<ShotTakes>(SpecJson.Options, cancellationToken));
    }

    private static async Task<int?> Refused(HttpResponseMessage response, Guid id, string verb, CancellationToken cancellationToken) => response.StatusCode switch
    {
        HttpStatusCode.NotFound => Commands.Fail(ExitCodes.NotFound, $"there is no shot or take {id}"),
        HttpStatusCode.Conflict => Commands.Fail(ExitCodes.NotAllowed, $"cannot {verb}: {await Commands.ProblemText(response, cancellationToken)}"),
        HttpStatusCode.BadRequest => Commands.Fail(ExitCodes.InvalidInput, $"cannot {verb}: {await Commands.ProblemText(response, cancellationToken)}"),
        _ when !response.IsSuccessStatusCode => Commands.Fail(ExitCodes.ServerError, $"{verb} failed ({(int)response.StatusCode}): {await Commands.ProblemText(response, cancellationToken)}"),
        _ => null,
    };

    /// <summary>A local review's notes, checked as the farm's API checks them (there is no server to do it); null when they pass.</summary>
    private static int? InvalidNotes(string verb, IEnumerable<SpecError> errors) =>
        errors.FirstOrDefault() is { } error ? Commands.Fail(ExitCodes.InvalidInput, $"cannot {verb}: {error.Field}: {error.Message}") : null;

    private static async Task<int> ReviewedAsync(ReviewResult result, TakeReviews takes, Guid id, CancellationToken cancellationToken) => result.Outcome switch
    {
        ReviewOutcome.NotFound => Commands.Fail(ExitCodes.NotFound, $"there is no take {id}"),
        ReviewOutcome.Conflict => Commands.Fail(ExitCodes.NotAllowed, result.Message!),
        _ => await PrintAsync(await takes.ListAsync(id, cancellationToken)),
    };

    private static Task<int> PrintAsync(ShotTakes? shot)
    {
        if (shot is null)
        {
            return Task.FromResult(Commands.Fail(ExitCodes.NotFound, "there is no such shot or take"));
        }

        AnsiConsole.MarkupLineInterpolated($"[bold]{shot.Name}[/] ({shot.Project}): {shot.Takes.Count} take(s); current version: {(shot.Current is { } v ? $"v{v.Version} = take {v.TakeNumber}, approved by {v.ApprovedBy} at {v.ApprovedAt:u}" : "none")}");
        string F(double? value) => value?.ToString("F3", CultureInfo.InvariantCulture) ?? "-";
        var table = new Table().AddColumns("take", "id", "state", "review", "overrides", "flicker", "seam", "adherence", "reused", "cost (USD)");
        foreach (var take in shot.Takes)
        {
            table.AddRow(
                $"{take.Number}{(take.Current ? " *" : "")}", take.Id.ToString(), take.State, Markup.Escape(take.Review + (take.ReviewNote is null ? "" : $": {take.ReviewNote}")),
                Markup.Escape(take.Overrides is null ? "" : System.Text.Json.JsonSerializer.Serialize(take.Overrides, SpecJson.Compact)),
                F(take.Metrics.Flicker), F(take.Metrics.SeamError), F(take.Metrics.PromptAdherence), take.ReusedTasks.ToString(CultureInfo.InvariantCulture), take.Cost.ToString("F6", CultureInfo.InvariantCulture));
        }

        AnsiConsole.Write(table);
        return Task.FromResult(ExitCodes.Succeeded);
    }

    /// <summary><c>seed=1,2,3</c> per option, as grid axes; null when one is malformed.</summary>
    private static List<KeyValuePair<string, string[]>>? Grid(string[] axes)
    {
        var grid = new List<KeyValuePair<string, string[]>>();
        foreach (var axis in axes)
        {
            var split = axis.Split('=', 2);
            if (split.Length != 2 || split[0].Length == 0 || split[1].Length == 0)
            {
                return null;
            }

            grid.Add(KeyValuePair.Create(split[0], split[1].Split(',', StringSplitOptions.TrimEntries)));
        }

        return grid;
    }

    private static SpecNode ToSpecNode(List<KeyValuePair<string, string[]>> grid) =>
        new SpecMap([new("grid", new SpecMap([.. grid.Select(axis => KeyValuePair.Create(axis.Key, (SpecNode)new SpecList([.. axis.Value.Select(v => new SpecScalar(v, true))])))]))]);

    private static JsonNode Value(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) ? JsonValue.Create(number) : JsonValue.Create(text);
}
