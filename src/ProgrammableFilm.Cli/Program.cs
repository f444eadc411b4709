using System.CommandLine;
using ProgrammableFilm.Cli;

var root = new RootCommand("pfilm: render AI video shots on the ProgrammableFilm farm, or on this machine.");
root.Subcommands.Add(Commands.Render());
root.Subcommands.Add(Commands.Submit());
root.Subcommands.Add(Commands.Status());
return await root.Parse(args).InvokeAsync();
