using System.Reflection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.OpenApi;

namespace ProgrammableFilm.Api.Extensions;

public static class OpenApiExtensions
{
    /// <summary>The API description at <c>/openapi/v1.json</c>; the build writes the same document to <c>docs/openapi/v1.json</c>.</summary>
    public static IServiceCollection AddFarmOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(options => options.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new OpenApiInfo
            {
                Title = "ProgrammableFilm API",
                Version = "v1",
                Description = "Submit shots, follow and steer jobs, read what they cost, watch the fleet. Errors are RFC 7807 problem details.",
            };
            // The served document names the host it was fetched from; the committed one must not depend on it.
            document.Servers = [];
            return Task.CompletedTask;
        }).AddOperationTransformer((operation, _, _) =>
        {
            // The handler reads the body itself (JSON or YAML by Content-Type): declaring it with Accepts would make
            // routing answer other content types with 415 instead of the handler's 400 problem.
            if (operation.OperationId is "SubmitJob" or "CreateQuote")
            {
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = true,
                    Description = "The job spec (README, \"The shot spec\"): JSON, or YAML with Content-Type application/yaml.",
                    Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new(), ["application/yaml"] = new() },
                };
            }

            if (operation.OperationId == "IterateShot")
            {
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = true,
                    Description = "{\"variants\": [overrides…] or {\"grid\": {parameter: [values…]}}, \"lane\": …, \"priority\": …, \"preview\": …}: JSON, or YAML with Content-Type application/yaml. Overrides as in a spec's variants (README).",
                    Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new(), ["application/yaml"] = new() },
                };
            }

            return Task.CompletedTask;
        }));

    /// <summary>True inside the build's document generator: the app is described, never started.</summary>
    public static bool GeneratingDocument { get; } = Assembly.GetEntryAssembly()?.GetName().Name == "GetDocument.Insider";

    /// <summary>
    /// The build runs the app to write the OpenAPI document (Microsoft.Extensions.ApiDescription.Server's
    /// GetDocument.Insider) with no database, broker or storage: the settings need only be present, since nothing
    /// connects (see <see cref="RemoveBackgroundWorkWhenDescribing"/>).
    /// </summary>
    public static void AddBuildTimeDocumentSettings(this IHostApplicationBuilder builder)
    {
        if (!GeneratingDocument)
        {
            return;
        }

        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Database:ConnectionString"] = "Host=127.0.0.1;Database=openapi-build",
            ["RabbitMq:Uri"] = "amqp://guest:guest@127.0.0.1:5672/",
            ["Storage:Root"] = Path.GetTempPath(),
        });
    }

    /// <summary>Inside the document generator the host starts, but the dispatcher, Hangfire and the bus must not.</summary>
    public static void RemoveBackgroundWorkWhenDescribing(this IHostApplicationBuilder builder)
    {
        if (GeneratingDocument)
        {
            builder.Services.RemoveAll<IHostedService>();
        }
    }
}
