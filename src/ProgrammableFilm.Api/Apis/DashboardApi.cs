using ProgrammableFilm.Domain.Access;
using ProgrammableFilm.Api.Access;
using System.Globalization;
using ProgrammableFilm.Api.Dashboard;
using ProgrammableFilm.Coordinator;

namespace ProgrammableFilm.Api.Apis;

/// <summary>The read endpoints behind the dashboard (served at <c>/</c>) and its live hub.</summary>
public static class DashboardApi
{
    public static IServiceCollection AddDashboard(this IServiceCollection services)
    {
        services.AddSignalR();
        services.AddSingleton<DashboardReports>();
        services.AddSingleton<LiveSubscriptions>();
        services.AddHostedService<LiveUpdates>();
        return services;
    }

    public static WebApplication MapDashboard(this WebApplication app)
    {
        app.UseDefaultFiles();
        app.UseStaticFiles();
        app.MapHub<FarmHub>(FarmHub.Path);
        var api = app.MapGroup("/api").WithTags("Dashboard");
        // A project key sees its own project; an admin key every one.
        api.MapGet("/projects", async (DashboardReports reports, HttpContext http, CancellationToken ct) =>
                (await reports.ProjectsAsync(ct)).Where(p => http.Caller() is var caller && (caller.IsAdmin || p.Project == caller.Project)).ToList())
            .WithName("ListProjects")
            .WithSummary("Every project that has a job, most recently active first: jobs, active jobs, spend in total and over the last 60 UTC minutes, the current one included (burn rate), device time and energy.")
            .Produces<IReadOnlyList<ProjectSummary>>();
        api.MapGet("/projects/{project}/spend/series", SpendSeriesAsync)
            .WithName("GetProjectSpendSeries")
            .WithSummary("A project's spend from the usage ledger per time bucket (?bucket=minute|hour|day, default hour; ?from= and ?to= ISO 8601 UTC, default the last 2 hours, 7 days or 90 days), over the whole UTC minutes the range touches (from and to in the answer say which); empty buckets are left out.")
            .Produces<SpendSeries>()
            .ProducesValidationProblem()
            .RequireProjectRole(ApiKeyRole.Viewer);
        api.MapGet("/projects/{project}/jobs/progress", ProjectJobsAsync)
            .WithName("ListProjectJobProgress")
            .WithSummary("Progress, state and cost so far of a project's newest jobs (?limit=50, at most 200), newest first: the same values the live hub pushes as 'job'.")
            .Produces<IReadOnlyList<JobProgress>>()
            .ProducesValidationProblem()
            .RequireProjectRole(ApiKeyRole.Viewer);
        api.MapGet("/fleet", (DashboardReports reports, CancellationToken ct) => reports.FleetAsync(ct))
            .WithName("GetFleet")
            .WithSummary("The fleet per pool (live and lost workers, slots in use, utilisation, tasks waiting per lane) and every worker.")
            .Produces<FleetSummary>()
            .RequireAdmin();
        api.MapGet("/shots/{shotId:guid}/timeline", TimelineAsync)
            .WithName("GetShotTimeline")
            .WithSummary($"A shot's rendered keyframes (frame numbers for thumbnails, at most {DashboardReports.MaxTimelineKeyframes} evenly spaced) and the attempts of its first tasks in key order, oldest first, with what each was billed (?limit=, at most {DashboardReports.MaxTimelineAttempts}).")
            .Produces<ShotTimeline>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .RequireProjectRole(ApiKeyRole.Viewer);
        return app;
    }

    private static async Task<IResult> SpendSeriesAsync(string project, string? bucket, string? from, string? to, DashboardReports reports, TimeProvider time, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        SpendBucket? parsed = bucket switch
        {
            null or "hour" => SpendBucket.Hour,
            "minute" => SpendBucket.Minute,
            "day" => SpendBucket.Day,
            _ => null,
        };
        if (parsed is null)
        {
            errors["bucket"] = ["must be minute, hour or day"];
        }

        var width = parsed ?? SpendBucket.Hour;
        var end = ParseTime(to, "to", errors) ?? time.GetUtcNow().UtcDateTime;
        var start = ParseTime(from, "from", errors) ?? end - DashboardReports.DefaultWindow(width);
        if (errors.Count == 0 && start >= end)
        {
            errors["from"] = ["must be before to"];
        }
        else if (errors.Count == 0 && (end - start) / DashboardReports.Width(width) > DashboardReports.MaxBuckets)
        {
            errors["from"] = [$"the range holds more than {DashboardReports.MaxBuckets} {width.ToString().ToLowerInvariant()} buckets: choose a wider bucket or a shorter range"];
        }

        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors, detail: string.Join("; ", errors.Select(e => $"{e.Key}: {e.Value[0]}")), title: "Invalid spend query");
        }

        return Results.Ok(await reports.SpendAsync(project, width, start, end, cancellationToken));
    }

    internal static DateTime? ParseTime(string? value, string field, Dictionary<string, string[]> errors)
    {
        if (value is null)
        {
            return null;
        }

        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed) && parsed.Year is >= 2000 and <= 9000)
        {
            return parsed.UtcDateTime;
        }

        errors[field] = ["must be an ISO 8601 time, such as 2026-11-30T18:00:00Z"];
        return null;
    }

    private static async Task<IResult> ProjectJobsAsync(string project, int? limit, DashboardReports reports, CancellationToken cancellationToken) =>
        limit is < 1 or > 200
            ? Results.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = ["must be 1 to 200"] }, detail: "limit: must be 1 to 200", title: "Invalid job list query")
            : Results.Ok(await reports.ProjectJobsAsync(project, limit ?? 50, cancellationToken));

    private static async Task<IResult> TimelineAsync(Guid shotId, int? limit, DashboardReports reports, CancellationToken cancellationToken)
    {
        if (limit is < 1 or > DashboardReports.MaxTimelineAttempts)
        {
            return Results.ValidationProblem(
                new Dictionary<string, string[]> { ["limit"] = [$"must be 1 to {DashboardReports.MaxTimelineAttempts}"] },
                detail: $"limit: must be 1 to {DashboardReports.MaxTimelineAttempts}",
                title: "Invalid timeline query");
        }

        return await reports.TimelineAsync(shotId, limit ?? 200, cancellationToken) is { } timeline ? Results.Ok(timeline) : JobsApi.NotFound($"shot {shotId}");
    }
}
