using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Quotes;
using Spectre.Console;

namespace ProgrammableFilm.Cli;

/// <summary><c>pfilm quote FILE</c>: what a spec would cost on the farm's current fleet, before submitting it.</summary>
public static class QuoteCommands
{
    public static IEnumerable<Command> All() => [Quote()];

    private static Command Quote()
    {
        var file = new Argument<FileInfo>("file") { Description = "A shot spec (YAML), as for submit." };
        var preview = new Option<bool>("--preview") { Description = "Quote the cheap preview of the spec instead." };
        var server = Commands.ServerOption();
        var apiKey = Commands.ApiKeyOption();
        var command = new Command("quote", "Quote a spec on a farm: expected device time, cost, energy and wall time, with a range (submitter key).") { file, preview, server, apiKey };
        command.SetAction((parse, cancellationToken) => Commands.Guard(() => QuoteAsync(parse.GetValue(file)!, parse.GetValue(preview), Commands.Client(parse, server, apiKey, TimeSpan.FromSeconds(60)), cancellationToken)));
        return command;
    }

    private static async Task<int> QuoteAsync(FileInfo file, bool preview, HttpClient client, CancellationToken cancellationToken)
    {
        using var http = client;

        // Checked here first: a broken spec is one line and exit 2 without a round trip (the farm checks it again).
        if (!Commands.TryReadSpec(file, out var spec, out var exitCode))
        {
            return exitCode;
        }

        using var content = new StringContent(await File.ReadAllTextAsync(file.FullName, cancellationToken), System.Text.Encoding.UTF8, "application/yaml");
        using var response = await http.PostAsync(new Uri($"api/projects/{Uri.EscapeDataString(spec.Project)}/quotes{(preview ? "?preview=true" : "")}", UriKind.Relative), content, cancellationToken);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return Commands.Fail(ExitCodes.NotFound, $"there is no project {spec.Project} for this key on {http.BaseAddress}");
        }

        if (!response.IsSuccessStatusCode)
        {
            return Commands.Fail((int)response.StatusCode == 400 ? ExitCodes.InvalidInput : ExitCodes.ServerError, $"the server refused the quote: {await Commands.ProblemText(response, cancellationToken)}");
        }

        var quote = (await response.Content.ReadFromJsonAsync<QuoteView>(SpecJson.Options, cancellationToken))!;
        if (Console.IsOutputRedirected)
        {
            // A CI log has no width; Spectre's default of 80 columns would wrap shot names, which then cannot be grepped.
            AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 200);
        }

        var table = new Table().AddColumns("shot", "kind", "from", "device-seconds", "cost (USD)", "range (USD)");
        foreach (var shot in quote.Shots)
        {
            table.AddRow(Markup.Escape(shot.Name), Markup.Escape(shot.Kind), shot.Basis == "history" ? $"history ({shot.HistoryShots} shots)" : shot.Basis, F(shot.DeviceSeconds, 2), F(shot.CostUsd, 6), $"{F(shot.LowUsd, 6)} – {F(shot.HighUsd, 6)}");
        }

        table.AddRow("[bold]total[/]", "", "", F(quote.DeviceSeconds, 2), $"[bold]{F(quote.CostUsd, 6)}[/]", $"{F(quote.LowUsd, 6)} – {F(quote.HighUsd, 6)}");
        AnsiConsole.Write(table);
        Console.WriteLine($"Priced at ${F(quote.DollarsPerHour, 4)} per {quote.DeviceSku} device-hour; energy {F(quote.EnergyKwh, 6)} kWh; "
            + (quote.WallSeconds is { } wall ? $"about {F(wall, 1)} s of wall time on {quote.LiveDevices} live device(s)" : "no live worker can run it now, so no wall time"));
        return ExitCodes.Succeeded;
    }

    private static string F(double value, int decimals) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    private static string F(decimal value, int decimals) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}
