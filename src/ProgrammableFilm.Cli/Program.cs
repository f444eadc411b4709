using System.CommandLine;
using Spectre.Console;

namespace ProgrammableFilm.Cli;

/// <summary><c>pfilm</c>'s entry point.</summary>
public static class CliProgram
{
    public static async Task<int> Main(string[] args)
    {
        if (Console.IsOutputRedirected)
        {
            // CI logs and pipes get plain text: no escape codes, no redrawn lines.
            AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No });
        }

        var root = new RootCommand("pfilm: render AI video shots on the ProgrammableFilm farm, or on this machine.");
        root.Subcommands.Add(Commands.Render());
        root.Subcommands.Add(Commands.Submit());
        root.Subcommands.Add(Commands.Status());
        root.Subcommands.Add(Commands.Wait());
        foreach (var command in ControlCommands.All().Concat(FarmViewCommands.All()).Concat(TakeCommands.All()).Concat(MoneyCommands.All()).Concat(QuoteCommands.All()))
        {
            root.Subcommands.Add(command);
        }

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            Console.Error.WriteLine($"pfilm: {string.Join("; ", parse.Errors.Select(e => e.Message))} (see pfilm --help)");
            return ExitCodes.InvalidInput;
        }

        return await parse.InvokeAsync();
    }
}
