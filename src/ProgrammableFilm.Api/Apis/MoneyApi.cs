using System.Text.Json;
using ProgrammableFilm.Api.Access;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Coordinator.Money;
using ProgrammableFilm.Domain.Access;
using ProgrammableFilm.Domain.Money;

namespace ProgrammableFilm.Api.Apis;

/// <summary>The body of <c>PUT /api/projects/{project}/budget</c>: the limit in dollars (six decimals at most) and the soft threshold as a fraction of it (default 0.8).</summary>
public sealed record BudgetRequest(decimal LimitUsd, double? SoftFraction);

/// <summary>The body of <c>POST /api/prices/devices</c>: a SKU's price per device-hour and rated power, from <c>effectiveFrom</c> (default now; never in the past), farm-wide or for <c>project</c>.</summary>
public sealed record DevicePriceRequest(string Sku, decimal DollarsPerHour, double RatedWatts, DateTime? EffectiveFrom, string? Project);

/// <summary>The body of <c>POST /api/prices/carbon</c>: a pool's (or <c>*</c>: every pool's) grid intensity in gCO2e/kWh, from <c>effectiveFrom</c>, farm-wide or for <c>project</c>.</summary>
public sealed record CarbonIntensityRequest(string Pool, double GramsPerKwh, DateTime? EffectiveFrom, string? Project);

/// <summary>Prices, budgets and spend reports (issue 13): read by the projects, the price book written by admins.</summary>
public static class MoneyApi
{
    public static IEndpointRouteBuilder MapMoneyApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").WithTags("Money");
        // Farm prices are public to every key (they are what each project is charged); a project's overrides only to its own keys.
        api.MapGet("/prices", (Prices prices, HttpContext http, CancellationToken ct) => prices.ListAsync(http.Caller().Project, http.Caller().IsAdmin, ct))
            .WithName("GetPriceBook")
            .WithSummary("The price book: every device price ($/device-hour, rated watts) and carbon intensity (gCO2e/kWh per pool, '*' for any), with when each takes effect and which are in force; a project key also sees its project's overrides, an admin key every project's.")
            .Produces<PriceBookView>();
        api.MapPost("/prices/devices", AddDevicePriceAsync)
            .WithName("AddDevicePrice")
            .WithSummary("Add a device price from effectiveFrom on (default now, never in the past), farm-wide or as a project's override (of a SKU the farm prices). Rows already billed keep their prices.")
            .Accepts<DevicePriceRequest>("application/json")
            .Produces<DevicePriceInfo>(StatusCodes.Status201Created)
            .ProducesValidationProblem()
            .RequireAdmin();
        api.MapPost("/prices/carbon", AddCarbonIntensityAsync)
            .WithName("AddCarbonIntensity")
            .WithSummary("Add a pool's grid carbon intensity ('*' for every pool without its own) from effectiveFrom on, farm-wide or for a project.")
            .Accepts<CarbonIntensityRequest>("application/json")
            .Produces<CarbonIntensityInfo>(StatusCodes.Status201Created)
            .ProducesValidationProblem()
            .RequireAdmin();
        api.MapGet("/projects/{project}/prices", (string project, Prices prices, CancellationToken ct) => prices.RatesAsync(project, ct))
            .WithName("GetProjectPrices")
            .WithSummary("What the project's attempts are billed at now: each SKU's price and each pool's carbon intensity, its overrides applied.")
            .Produces<ProjectRates>()
            .RequireProjectRole(ApiKeyRole.Viewer);
        api.MapGet("/projects/{project}/budget", (string project, Budgets budgets, CancellationToken ct) => budgets.GetAsync(project, ct))
            .WithName("GetProjectBudget")
            .WithSummary("The project's budget and spend: limitUsd, softFraction, spentUsd, state (ok, soft: past the soft threshold, hard: limit reached, nothing new is dispatched), energy, CO2e and the latest crossings of the project's own thresholds (its jobs' own are on each job's budget).")
            .Produces<BudgetStatus>()
            .RequireProjectRole(ApiKeyRole.Viewer);
        api.MapPut("/projects/{project}/budget", SetBudgetAsync)
            .WithName("SetProjectBudget")
            .WithSummary("Set the project's budget: {\"limitUsd\": 500, \"softFraction\": 0.8}. At the limit nothing new of the project is dispatched (running attempts finish); raising it resumes its jobs.")
            .Accepts<BudgetRequest>("application/json")
            .Produces<BudgetStatus>()
            .ProducesValidationProblem()
            .RequireProjectRole(ApiKeyRole.Producer);
        api.MapGet("/projects/{project}/budget/alerts", AlertsAsync)
            .WithName("ListProjectBudgetAlerts")
            .WithSummary($"Every crossing of the project's budget thresholds and of its jobs' own, newest first (?limit=50, at most {Budgets.MaxAlertsListed}): level (soft, hard), jobId (null for the project's own budget), when, the spend at the crossing and the limit then.")
            .Produces<IReadOnlyList<BudgetAlert>>()
            .ProducesValidationProblem()
            .RequireProjectRole(ApiKeyRole.Viewer);
        api.MapGet("/jobs/{jobId:guid}/budget", JobBudgetAsync)
            .WithName("GetJobBudget")
            .WithSummary("The job's own budget and spend: limitUsd, softFraction, spentUsd, state (ok, soft, hard: limit reached, nothing new of the job is dispatched) and the latest crossings of its own thresholds. Its project's budget applies as well.")
            .Produces<JobBudgetStatus>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .RequireProjectRole(ApiKeyRole.Viewer);
        api.MapPut("/jobs/{jobId:guid}/budget", SetJobBudgetAsync)
            .WithName("SetJobBudget")
            .WithSummary("Set the job's own budget: {\"limitUsd\": 50, \"softFraction\": 0.8}. At the limit nothing new of the job is dispatched (running attempts finish) and its status says waitingFor: job-budget; raising it resumes the job.")
            .Accepts<BudgetRequest>("application/json")
            .Produces<JobBudgetStatus>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .RequireProjectRole(ApiKeyRole.Producer);
        api.MapGet("/projects/{project}/spend", SpendAsync)
            .WithName("GetProjectSpend")
            .WithSummary("The project's spend from the usage ledger, grouped (?groupBy=day|sku|shot|job, default day) within ?from= and ?to= (ISO 8601, UTC; to exclusive): attempts, device-seconds, cost, kWh, CO2e per group and in total. JSON, or CSV with Accept: text/csv or ?format=csv.")
            .Produces<SpendReport>()
            .Produces<string>(StatusCodes.Status200OK, "text/csv")
            .ProducesValidationProblem()
            .RequireProjectRole(ApiKeyRole.Viewer);
        return app;
    }

    private static async Task<IResult> SetBudgetAsync(string project, HttpRequest request, Budgets budgets, AuditLog audit, CancellationToken cancellationToken)
    {
        var caller = request.HttpContext.Caller();
        var body = await JsonBody.ReadAsync(request, ["limitUsd", "softFraction"], cancellationToken);
        var limit = body.Decimal("limitUsd", required: true);
        var fraction = body.Double("softFraction", required: false);
        var (status, errors) = body.Errors.Count > 0 ? (null, body.Errors) : await budgets.SetAsync(project, limit!.Value, fraction, cancellationToken);
        await audit.RecordAsync(caller, project, "budget.set", project, status is null ? "invalid" : "ok");
        return status is null ? Invalid("Invalid budget", errors) : Results.Ok(status);
    }

    private static async Task<IResult> AlertsAsync(string project, int? limit, Budgets budgets, CancellationToken cancellationToken) =>
        limit is < 1 or > Budgets.MaxAlertsListed
            ? Results.ValidationProblem(
                new Dictionary<string, string[]> { ["limit"] = [$"must be 1 to {Budgets.MaxAlertsListed}"] },
                detail: $"limit: must be 1 to {Budgets.MaxAlertsListed}",
                title: "Invalid budget alert query")
            : Results.Ok(await budgets.AlertsAsync(project, limit ?? 50, cancellationToken));

    private static async Task<IResult> JobBudgetAsync(Guid jobId, Budgets budgets, CancellationToken cancellationToken) =>
        await budgets.GetJobAsync(jobId, cancellationToken) is { } status ? Results.Ok(status) : JobsApi.NotFound($"job {jobId}");

    private static async Task<IResult> SetJobBudgetAsync(Guid jobId, HttpRequest request, Budgets budgets, AuditLog audit, CancellationToken cancellationToken)
    {
        var caller = request.HttpContext.Caller();
        var body = await JsonBody.ReadAsync(request, ["limitUsd", "softFraction"], cancellationToken);
        var limit = body.Decimal("limitUsd", required: true);
        var fraction = body.Double("softFraction", required: false);
        var (status, errors) = body.Errors.Count > 0 ? (null, body.Errors) : await budgets.SetJobAsync(jobId, limit!.Value, fraction, cancellationToken);
        if (status is null && errors.Count == 0)
        {
            return JobsApi.NotFound($"job {jobId}");
        }

        await audit.RecordAsync(caller, status?.Project ?? caller.Project, "budget.set", jobId.ToString(), status is null ? "invalid" : "ok");
        return status is null ? Invalid("Invalid budget", errors) : Results.Ok(status);
    }

    private static async Task<IResult> AddDevicePriceAsync(HttpRequest request, Prices prices, AuditLog audit, CancellationToken cancellationToken)
    {
        var body = await JsonBody.ReadAsync(request, ["sku", "dollarsPerHour", "ratedWatts", "effectiveFrom", "project"], cancellationToken);
        var sku = body.String("sku", required: true);
        var dollars = body.Decimal("dollarsPerHour", required: true);
        var watts = body.Double("ratedWatts", required: true);
        var from = body.Time("effectiveFrom");
        var project = body.String("project", required: false);
        var (added, errors) = body.Errors.Count > 0 ? (null, body.Errors) : await prices.AddDevicePriceAsync(new NewDevicePrice(sku!, project, dollars!.Value, watts!.Value, from), cancellationToken);
        await audit.RecordAsync(request.HttpContext.Caller(), project, "price.add", $"device {sku}", added is null ? "invalid" : "ok");
        return added is null ? Invalid("Invalid device price", errors) : Results.Created("/api/prices", added);
    }

    private static async Task<IResult> AddCarbonIntensityAsync(HttpRequest request, Prices prices, AuditLog audit, CancellationToken cancellationToken)
    {
        var body = await JsonBody.ReadAsync(request, ["pool", "gramsPerKwh", "effectiveFrom", "project"], cancellationToken);
        var pool = body.String("pool", required: true);
        var grams = body.Double("gramsPerKwh", required: true);
        var from = body.Time("effectiveFrom");
        var project = body.String("project", required: false);
        var (added, errors) = body.Errors.Count > 0 ? (null, body.Errors) : await prices.AddCarbonIntensityAsync(new NewCarbonIntensity(pool!, project, grams!.Value, from), cancellationToken);
        await audit.RecordAsync(request.HttpContext.Caller(), project, "price.add", $"carbon {pool}", added is null ? "invalid" : "ok");
        return added is null ? Invalid("Invalid carbon intensity", errors) : Results.Created("/api/prices", added);
    }

    private static async Task<IResult> SpendAsync(string project, string? groupBy, string? from, string? to, string? format, HttpRequest request, SpendReports reports, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        SpendGrouping? grouping = groupBy switch
        {
            null or "day" => SpendGrouping.Day,
            "sku" => SpendGrouping.Sku,
            "shot" => SpendGrouping.Shot,
            "job" => SpendGrouping.Job,
            _ => null,
        };
        if (grouping is null)
        {
            errors["groupBy"] = ["must be day, sku, shot or job"];
        }

        if (format is not (null or "json" or "csv"))
        {
            errors["format"] = ["must be json or csv"];
        }

        var start = DashboardApi.ParseTime(from, "from", errors);
        var end = DashboardApi.ParseTime(to, "to", errors);
        if (start is not null && end is not null && start >= end)
        {
            errors["from"] = ["must be before to"];
        }

        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors, detail: string.Join("; ", errors.Select(e => $"{e.Key}: {e.Value[0]}")), title: "Invalid spend query");
        }

        var report = await reports.ReportAsync(project, grouping!.Value, start, end, cancellationToken);
        var csv = format == "csv" || (format is null && request.Headers.Accept.Any(a => a is not null && a.Contains("text/csv", StringComparison.OrdinalIgnoreCase)));
        return csv ? Results.Text(SpendReports.ToCsv(report), "text/csv; charset=utf-8") : Results.Ok(report);
    }

    private static IResult Invalid(string title, IReadOnlyList<FieldError> errors) => Results.ValidationProblem(
        errors.GroupBy(e => e.Field, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Select(e => e.Message).ToArray(), StringComparer.Ordinal),
        detail: string.Join("; ", errors.Select(e => $"{e.Field}: {e.Message}")),
        title: title);

    /// <summary>
    /// A JSON object read field by field, so that every problem names its field: a string where a number belongs, a
    /// number out of range, an unknown field, or a body that is not a JSON object at all (field <c>body</c>).
    /// </summary>
    private sealed class JsonBody
    {
        private readonly JsonElement _root;

        private JsonBody(JsonElement root, List<FieldError> errors)
        {
            _root = root;
            Errors = errors;
        }

        public List<FieldError> Errors { get; }

        public static async Task<JsonBody> ReadAsync(HttpRequest request, string[] fields, CancellationToken cancellationToken)
        {
            var errors = new List<FieldError>();
            try
            {
                using var document = await JsonDocument.ParseAsync(request.Body, new JsonDocumentOptions { MaxDepth = 8 }, cancellationToken);
                var root = document.RootElement.Clone();
                if (root.ValueKind != JsonValueKind.Object)
                {
                    errors.Add(new FieldError("body", "must be a JSON object"));
                    return new JsonBody(default, errors);
                }

                errors.AddRange(root.EnumerateObject().Where(p => !fields.Contains(p.Name, StringComparer.Ordinal)).Select(p => new FieldError(p.Name, $"is not a field here (expected {string.Join(", ", fields)})")));
                return new JsonBody(root, errors);
            }
            catch (JsonException e)
            {
                errors.Add(new FieldError("body", $"is not valid JSON: {e.Message.Split(" Path:", 2)[0]}"));
                return new JsonBody(default, errors);
            }
        }

        public string? String(string field, bool required) => Get(field, required) is { } value
            ? value.ValueKind == JsonValueKind.String ? value.GetString() : StringError(field)
            : null;

        public decimal? Decimal(string field, bool required) => Get(field, required) is { } value
            ? value.ValueKind == JsonValueKind.Number && value.TryGetDecimal(out var number) ? number : Error<decimal>(field, "must be a number (a JSON number; NaN and infinities are not numbers)")
            : null;

        public double? Double(string field, bool required) => Get(field, required) is { } value
            ? value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var number) && double.IsFinite(number) ? number : Error<double>(field, "must be a finite number")
            : null;

        public DateTime? Time(string field) => Get(field, required: false) is { } value
            ? value.ValueKind == JsonValueKind.String && value.TryGetDateTimeOffset(out var time) && time.Year is >= 2000 and <= 9000 ? time.UtcDateTime : Error<DateTime>(field, "must be an ISO 8601 time with its offset, such as 2026-12-01T00:00:00Z")
            : null;

        private JsonElement? Get(string field, bool required)
        {
            if (_root.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            if (_root.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null)
            {
                return value;
            }

            if (required)
            {
                Errors.Add(new FieldError(field, "is required"));
            }

            return null;
        }

        private string? StringError(string field)
        {
            Errors.Add(new FieldError(field, "must be a string"));
            return null;
        }

        private T? Error<T>(string field, string message) where T : struct
        {
            Errors.Add(new FieldError(field, message));
            return null;
        }
    }
}
