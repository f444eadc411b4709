using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Money;
using Spectre.Console;

namespace ProgrammableFilm.Cli;

/// <summary><c>pfilm spend PROJECT</c> and <c>pfilm budget PROJECT</c> (or <c>--job ID</c>): what a project spent, and its budget or a job's.</summary>
public static class MoneyCommands
{
    public static IEnumerable<Command> All() => [Spend(), Budget()];

    private static Command Spend()
    {
        var project = new Argument<string>("project") { Description = "The project whose spend to report." };
        var from = new Option<string?>("--from") { Description = "From this time on (ISO 8601, UTC unless it says otherwise), e.g. 2026-12-01." };
        var to = new Option<string?>("--to") { Description = "Before this time (exclusive)." };
        var groupBy = new Option<string>("--group-by") { Description = "day, sku, shot or job.", DefaultValueFactory = _ => "day" };
        var server = Commands.ServerOption();
        var apiKey = Commands.ApiKeyOption();
        var command = new Command("spend", "Report a project's spend from the usage ledger: attempts, device time, cost, energy and CO2e per day, SKU, shot or job.") { project, from, to, groupBy, server, apiKey };
        command.SetAction((parse, cancellationToken) => Commands.Guard(() => SpendAsync(Commands.Client(parse, server, apiKey, TimeSpan.FromSeconds(60)), parse.GetValue(project)!, parse.GetValue(from), parse.GetValue(to), parse.GetValue(groupBy)!, cancellationToken)));
        return command;
    }

    private static async Task<int> SpendAsync(HttpClient client, string project, string? from, string? to, string groupBy, CancellationToken cancellationToken)
    {
        using var http = client;
        // Checked here too, so a typo is one line and exit 2 without a round trip; the server checks the same.
        if (groupBy is not ("day" or "sku" or "shot" or "job"))
        {
            return Commands.Fail(ExitCodes.InvalidInput, $"--group-by must be day, sku, shot or job, not '{groupBy}'");
        }

        foreach (var (name, value) in new[] { ("--from", from), ("--to", to) })
        {
            if (value is not null && !DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out _))
            {
                return Commands.Fail(ExitCodes.InvalidInput, $"{name} must be an ISO 8601 time such as 2026-12-01 or 2026-12-01T18:00:00Z, not '{value}'");
            }
        }

        var query = $"groupBy={groupBy}{(from is null ? "" : $"&from={Uri.EscapeDataString(from)}")}{(to is null ? "" : $"&to={Uri.EscapeDataString(to)}")}";
        using var response = await http.GetAsync(new Uri($"api/projects/{Uri.EscapeDataString(project)}/spend?{query}", UriKind.Relative), cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return Commands.Fail(ExitCodes.NotFound, $"there is no project {project} for this key on {http.BaseAddress}");
        }

        if (!response.IsSuccessStatusCode)
        {
            return Commands.Fail(response.StatusCode == HttpStatusCode.BadRequest ? ExitCodes.InvalidInput : ExitCodes.ServerError, $"spend failed: {await Commands.ProblemText(response, cancellationToken)}");
        }

        var report = (await response.Content.ReadFromJsonAsync<SpendReport>(SpecJson.Options, cancellationToken))!;
        var table = new Table().AddColumns(report.GroupBy, "attempts", "device-seconds", "energy (kWh)", "CO2e (g)", "cost (USD)");
        foreach (var line in report.Lines)
        {
            AddRow(table, Markup.Escape(line.Label is { Length: > 0 } label ? $"{label} ({line.Key})" : line.Key), line);
        }

        AddRow(table, "[bold]total[/]", report.Total);
        AnsiConsole.Write(table);
        return ExitCodes.Succeeded;
    }

    private static void AddRow(Table table, string key, SpendLine line) => table.AddRow(
        key,
        line.Attempts.ToString(CultureInfo.InvariantCulture),
        line.DeviceSeconds.ToString("F2", CultureInfo.InvariantCulture),
        line.EnergyKwh.ToString("F6", CultureInfo.InvariantCulture),
        line.Co2eGrams.ToString("F3", CultureInfo.InvariantCulture),
        line.CostUsd.ToString("F6", CultureInfo.InvariantCulture));

    private static Command Budget()
    {
        var project = new Argument<string?>("project") { Description = "The project whose budget to show or set.", Arity = ArgumentArity.ZeroOrOne };
        var job = new Option<Guid?>("--job") { Description = "Show or set this job's own budget instead (its project's still applies)." };
        var limit = new Option<decimal?>("--limit") { Description = "Set the budget in US dollars (a producer's key): at the limit nothing new of the project (or job) is dispatched." };
        var soft = new Option<double?>("--soft") { Description = "The soft threshold as a fraction of the limit (default 0.8): crossing it alerts." };
        var server = Commands.ServerOption();
        var apiKey = Commands.ApiKeyOption();
        var command = new Command("budget", "Show a project's (or with --job, a job's) budget, spend and state (ok, soft, hard), or set it.") { project, job, limit, soft, server, apiKey };
        command.SetAction((parse, cancellationToken) => Commands.Guard(() => BudgetAsync(Commands.Client(parse, server, apiKey, TimeSpan.FromSeconds(30)), parse.GetValue(project), parse.GetValue(job), parse.GetValue(limit), parse.GetValue(soft), cancellationToken)));
        return command;
    }

    private static async Task<int> BudgetAsync(HttpClient client, string? project, Guid? job, decimal? limit, double? soft, CancellationToken cancellationToken)
    {
        using var http = client;
        if (soft is not null && limit is null)
        {
            return Commands.Fail(ExitCodes.InvalidInput, "--soft needs --limit (the budget is set as a whole)");
        }

        if ((project is null) == (job is null))
        {
            return Commands.Fail(ExitCodes.InvalidInput, "name a project or --job ID (one of them)");
        }

        if (project is null)
        {
            return await JobBudgetAsync(http, job!.Value, limit, soft, cancellationToken);
        }

        var uri = new Uri($"api/projects/{Uri.EscapeDataString(project)}/budget", UriKind.Relative);
        using var response = limit is { } value
            ? await http.PutAsJsonAsync(uri, new { limitUsd = value, softFraction = soft }, cancellationToken)
            : await http.GetAsync(uri, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return Commands.Fail(ExitCodes.NotFound, $"there is no project {project} for this key on {http.BaseAddress}");
        }

        if (!response.IsSuccessStatusCode)
        {
            return Commands.Fail(response.StatusCode == HttpStatusCode.BadRequest ? ExitCodes.InvalidInput : ExitCodes.ServerError, $"budget failed: {await Commands.ProblemText(response, cancellationToken)}");
        }

        var budget = (await response.Content.ReadFromJsonAsync<BudgetStatus>(SpecJson.Options, cancellationToken))!;
        var spent = budget.SpentUsd.ToString("F6", CultureInfo.InvariantCulture);
        Console.WriteLine(budget.LimitUsd is { } set
            ? $"{budget.Project}: {budget.State}, spent ${spent} of ${set.ToString("F2", CultureInfo.InvariantCulture)} (soft at {(budget.SoftFraction ?? 0).ToString("P0", CultureInfo.InvariantCulture)}), {budget.EnergyKwh.ToString("F4", CultureInfo.InvariantCulture)} kWh, {(budget.Co2eGrams / 1000).ToString("F3", CultureInfo.InvariantCulture)} kg CO2e"
            : $"{budget.Project}: no budget, spent ${spent}");
        PrintAlerts(budget.Alerts);
        return ExitCodes.Succeeded;
    }

    private static async Task<int> JobBudgetAsync(HttpClient http, Guid job, decimal? limit, double? soft, CancellationToken cancellationToken)
    {
        var uri = new Uri($"api/jobs/{job}/budget", UriKind.Relative);
        using var response = limit is { } value
            ? await http.PutAsJsonAsync(uri, new { limitUsd = value, softFraction = soft }, cancellationToken)
            : await http.GetAsync(uri, cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return Commands.Fail(ExitCodes.NotFound, $"there is no job {job} for this key on {http.BaseAddress}");
        }

        if (!response.IsSuccessStatusCode)
        {
            return Commands.Fail(response.StatusCode == HttpStatusCode.BadRequest ? ExitCodes.InvalidInput : ExitCodes.ServerError, $"budget failed: {await Commands.ProblemText(response, cancellationToken)}");
        }

        var budget = (await response.Content.ReadFromJsonAsync<JobBudgetStatus>(SpecJson.Options, cancellationToken))!;
        var spent = budget.SpentUsd.ToString("F6", CultureInfo.InvariantCulture);
        Console.WriteLine(budget.LimitUsd is { } set
            ? $"job {budget.JobId} ({budget.Project}): {budget.State}, spent ${spent} of ${set.ToString("F2", CultureInfo.InvariantCulture)} (soft at {(budget.SoftFraction ?? 0).ToString("P0", CultureInfo.InvariantCulture)})"
            : $"job {budget.JobId} ({budget.Project}): no budget of its own, spent ${spent}");
        PrintAlerts(budget.Alerts);
        return ExitCodes.Succeeded;
    }

    /// <summary>The budget's latest crossings (the API lists up to 20), newest first, one line each.</summary>
    private static void PrintAlerts(IReadOnlyList<BudgetAlert> alerts)
    {
        if (alerts.Count == 0)
        {
            return;
        }

        Console.WriteLine("crossings, newest first:");
        foreach (var alert in alerts)
        {
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"  {alert.CrossedAt:yyyy-MM-dd'T'HH:mm:ss'Z'}  {alert.Level,-4}  spent ${alert.SpentUsd:F6} of a ${alert.LimitUsd:0.00####} limit"));
        }
    }
}
