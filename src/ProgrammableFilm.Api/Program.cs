using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Api.Apis;
using ProgrammableFilm.Api.Extensions;
using ProgrammableFilm.ServiceDefaults;
using Scalar.AspNetCore;

// Settings sit beside the binaries, wherever the process is started from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddBuildTimeDocumentSettings();
builder.AddServiceDefaults("pfilm-api");
builder.AddFarmServices();
builder.AddFarmAccess();
builder.Services.AddFarmOpenApi();
builder.Services.AddDashboard();
builder.RemoveBackgroundWorkWhenDescribing();

var app = builder.Build();
try
{
    if (args.Contains("migrate", StringComparer.Ordinal))
    {
        await app.MigrateDatabaseAsync();
        return;
    }

    if (args.FirstOrDefault() == "create-key")
    {
        Environment.ExitCode = await app.CreateKeyAsync(args[1..]);
        return;
    }

    if (!OpenApiExtensions.GeneratingDocument)
    {
        await app.RequireMigratedDatabaseAsync();
        await app.ExplainFirstKeyAsync();
    }
}
catch (Exception e) when (e is DatabaseNotReadyException or System.Data.Common.DbException)
{
    // A missing migration step or a database not up yet: one line and a failing exit code (a supervisor starts the
    // process again), not a stack trace.
    Console.Error.WriteLine($"pfilm-api: {e.Message}");
    Environment.ExitCode = 1;
    return;
}

app.UseExceptionHandler(new ExceptionHandlerOptions
{
    // A request the framework cannot bind (a query value that is not a number, say) is the client's error, not ours.
    StatusCodeSelector = exception => exception is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status500InternalServerError,
});
app.UseStatusCodePages();
// The dashboard's static files are public (its data is not: the page sends a key with every request).
app.MapDashboard();
app.UseFarmAccess();
app.MapJobsApi();
app.MapShotsApi();
app.MapTakesApi();
app.MapPlatesApi();
app.MapJobControlApi();
app.MapFarmApi();
app.MapKeysApi();
app.MapAuditApi();
app.MapMoneyApi();
app.MapQuotesApi();
app.MapWebhooksApi();
app.MapMaintenanceDashboard();
app.MapDefaultEndpoints();
app.MapGet("/healthz", () => Results.Ok(new { status = "ok" })).ExcludeFromDescription().AllowAnonymous();
app.MapOpenApi().AllowAnonymous();
// The reference page loads its script from this process and no fonts: it works with no internet. Its AI agent and
// developer tools (share, SDK generation) are hosted services of scalar.com: off.
app.MapScalarApiReference("/api-docs", options => options.WithTitle("ProgrammableFilm API").DisableDefaultFonts().DisableAgent().HideDeveloperTools()).AllowAnonymous();

await app.RunAsync();

/// <summary>Exposed for <c>WebApplicationFactory</c> in the integration tests.</summary>
public partial class Program;
