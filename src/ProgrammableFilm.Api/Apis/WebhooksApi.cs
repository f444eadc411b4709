using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Coordinator.Webhooks;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Api.Apis;

/// <summary>A new webhook: where to POST (<c>http</c> or <c>https</c>) and which events (<c>job.succeeded</c>, <c>job.failed</c>, <c>shot.succeeded</c>, <c>budget.soft</c>, <c>budget.hard</c>).</summary>
public sealed record CreateWebhookRequest(string? Url, IReadOnlyList<string?>? Events, string? Description);

public static class WebhooksApi
{
    private const int MaxPageSize = 200;

    public static IEndpointRouteBuilder MapWebhooksApi(this IEndpointRouteBuilder app)
    {
        // A producer's, like keys: a webhook sends the project's events to an address of its choosing, signed with a
        // secret that proves they came from the farm.
        var api = app.MapGroup("/api/projects/{project}/webhooks").WithTags("Webhooks").RequireProjectRole(ApiKeyRole.Producer);
        api.MapPost("", CreateAsync)
            .WithName("CreateWebhook")
            .WithSummary("Subscribe a URL to the project's events; the answer holds the signing secret, once (docs/webhooks.md: verifying a delivery). The URL's addresses must be allowed by the farm's webhook target policy.")
            .Produces<CreatedWebhook>(StatusCodes.Status201Created)
            .ProducesValidationProblem();
        api.MapGet("", (string project, WebhookSubscriptions webhooks, CancellationToken ct) => webhooks.ListAsync(project, ct))
            .WithName("ListWebhooks")
            .WithSummary("The project's webhooks: URL, events, description; never the secret.")
            .Produces<IReadOnlyList<WebhookInfo>>();
        api.MapDelete("/{webhookId:guid}", DeleteAsync)
            .WithName("DeleteWebhook")
            .WithSummary("Delete a webhook: nothing more is sent to it (pending deliveries are dropped); its delivery log stays readable.")
            .Produces<WebhookInfo>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        api.MapGet("/{webhookId:guid}/deliveries", DeliveriesAsync)
            .WithName("ListWebhookDeliveries")
            .WithSummary("A webhook's deliveries, newest first (?limit=50, at most 200), each with every attempt: time, status code or error, duration.")
            .Produces<IReadOnlyList<WebhookDeliveryInfo>>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task<IResult> CreateAsync(string project, CreateWebhookRequest request, WebhookSubscriptions webhooks, AuditLog audit, HttpContext http, CancellationToken cancellationToken)
    {
        var caller = http.Caller();
        var (created, errors) = await webhooks.CreateAsync(project, request.Url, request.Events, request.Description, caller.KeyId, cancellationToken);
        if (errors is not null)
        {
            await audit.RecordAsync(caller, project, "webhook.create", request.Url ?? "", "invalid");
            return Results.ValidationProblem(
                errors.Errors,
                detail: string.Join("; ", errors.Errors.Select(e => $"{e.Key}: {string.Join(", ", e.Value)}")),
                title: "The webhook request is invalid");
        }

        await audit.RecordAsync(caller, project, "webhook.create", $"{created!.Id} ({created.Url})", "ok");
        return Results.Created($"/api/projects/{project}/webhooks/{created.Id}", created);
    }

    private static async Task<IResult> DeleteAsync(string project, Guid webhookId, WebhookSubscriptions webhooks, AuditLog audit, HttpContext http, CancellationToken cancellationToken)
    {
        var deleted = await webhooks.DeleteAsync(project, webhookId, cancellationToken);
        await audit.RecordAsync(http.Caller(), project, "webhook.delete", webhookId.ToString(), deleted is null ? "not-found" : "ok");
        return deleted is null ? JobsApi.NotFound($"webhook {webhookId}") : Results.Ok(deleted);
    }

    private static async Task<IResult> DeliveriesAsync(string project, Guid webhookId, int? limit, WebhookSubscriptions webhooks, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > MaxPageSize)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid page", detail: $"limit must be 1 to {MaxPageSize}");
        }

        return await webhooks.DeliveriesAsync(project, webhookId, limit ?? 50, cancellationToken) is { } log ? Results.Ok(log) : JobsApi.NotFound($"webhook {webhookId}");
    }
}
