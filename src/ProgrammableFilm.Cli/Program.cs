using System.CommandLine;

namespace ProgrammableFilm.Cli;

/// <summary><c>pfilm</c>'s entry point.</summary>
public static class CliProgram
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("pfilm: render AI video shots on the ProgrammableFilm farm, or on this machine.");
        root.Subcommands.Add(Commands.Render());
        root.Subcommands.Add(Commands.Submit());
        root.Subcommands.Add(Commands.Status());
        return await root.Parse(args).InvokeAsync();
    }
}
