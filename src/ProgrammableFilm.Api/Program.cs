using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Api.Apis;
using ProgrammableFilm.Api.Extensions;
using ProgrammableFilm.ServiceDefaults;

// Settings sit beside the binaries, wherever the process is started from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddServiceDefaults("pfilm-api");
builder.AddFarmServices();
builder.AddFarmAccess();
builder.Services.AddOpenApi();

var app = builder.Build();
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

await app.RequireMigratedDatabaseAsync();
await app.ExplainFirstKeyAsync();
app.UseExceptionHandler(new ExceptionHandlerOptions
{
    // A request the framework cannot bind (a query value that is not a number, say) is the client's error, not ours.
    StatusCodeSelector = exception => exception is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status500InternalServerError,
});
app.UseStatusCodePages();
app.UseFarmAccess();
app.MapOpenApi().AllowAnonymous();
app.MapJobsApi();
app.MapShotsApi();
app.MapJobControlApi();
app.MapFarmApi();
app.MapKeysApi();
app.MapAuditApi();
app.MapMaintenanceDashboard();
app.MapDefaultEndpoints();
app.MapGet("/healthz", () => Results.Ok(new { status = "ok" })).ExcludeFromDescription().AllowAnonymous();

await app.RunAsync();

/// <summary>Exposed for <c>WebApplicationFactory</c> in the integration tests.</summary>
public partial class Program;
