using System.Globalization;
using ProgrammableFilm.Api.Extensions;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Api.Access;

/// <summary>
/// <c>ProgrammableFilm.Api create-key</c>: the first admin key (and any key, when no admin key is at hand) comes from
/// the process that owns the database, with the same settings as the API, never from an open endpoint.
/// </summary>
public static class KeyVerbs
{
    public const string Usage = "create-key --role admin|viewer|submitter|producer [--project PROJECT] [--name NAME] [--expires-in-days N]";

    /// <summary>Prints the new key alone on standard output (so a script can capture it), everything else on standard error.</summary>
    public static async Task<int> CreateKeyAsync(this WebApplication app, string[] arguments)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < arguments.Length; i += 2)
        {
            options[arguments[i]] = arguments[i + 1];
        }

        var known = new[] { "--role", "--project", "--name", "--expires-in-days" };
        if (arguments.Length % 2 != 0 || options.Keys.Any(k => !known.Contains(k, StringComparer.Ordinal))
            || !options.TryGetValue("--role", out var roleText) || !Enum.TryParse<ApiKeyRole>(roleText, ignoreCase: true, out var role) || roleText.Any(char.IsDigit))
        {
            Console.Error.WriteLine($"usage: {Usage}");
            return 2;
        }

        var project = options.GetValueOrDefault("--project");
        if ((role == ApiKeyRole.Admin) != (project is null))
        {
            Console.Error.WriteLine("an admin key takes no --project; every other role needs one");
            return 2;
        }

        DateTime? expiresAt = null;
        if (options.TryGetValue("--expires-in-days", out var days))
        {
            if (!int.TryParse(days, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count < 1)
            {
                Console.Error.WriteLine("--expires-in-days must be a whole number of days, at least 1");
                return 2;
            }

            expiresAt = app.Services.GetRequiredService<TimeProvider>().GetUtcNow().UtcDateTime.AddDays(count);
        }

        await app.RequireMigratedDatabaseAsync();
        var name = options.GetValueOrDefault("--name") ?? $"{role.ToString().ToLowerInvariant()} key made by create-key";
        var created = await app.Services.GetRequiredService<ApiKeys>().CreateAsync(name, project, role, expiresAt, null, CancellationToken.None);
        await app.Services.GetRequiredService<AuditLog>().RecordAsync(null, project, "key.create", $"{created.Info.Id} ({created.Info.Prefix}, {created.Info.Role})", "ok: create-key verb");
        Console.Error.WriteLine($"Created {created.Info.Role} key {created.Info.Prefix} ({created.Info.Id}){(project is null ? "" : $" for project {project}")}. It is shown once; store it now:");
        Console.WriteLine(created.Key);
        return 0;
    }

    /// <summary>A farm nobody can call yet says, at start, how to make the first key.</summary>
    public static async Task ExplainFirstKeyAsync(this WebApplication app)
    {
        if (!await app.Services.GetRequiredService<ApiKeys>().AnyUsableAdminKeyAsync(CancellationToken.None))
        {
            app.Logger.LogWarning(
                "No admin API key exists: every request except health and metrics is refused. Make the first one with the API's settings: "
                + "dotnet run --project src/ProgrammableFilm.Api -- create-key --role admin --name NAME (in a container: dotnet ProgrammableFilm.Api.dll create-key --role admin --name NAME)");
        }
    }
}
