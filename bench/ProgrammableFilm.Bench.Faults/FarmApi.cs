using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace ProgrammableFilm.Bench.Faults;

/// <summary>A job as <c>GET /api/jobs/{id}</c> shows it; only the fields the harness reads.</summary>
public sealed record JobSnapshot(Guid Id, string State, DateTimeOffset? FinishedAt, int TasksTotal, int TasksSucceeded);

/// <summary>A worker as <c>GET /api/workers</c> shows it.</summary>
public sealed record WorkerSnapshot(string Id, string? State);

/// <summary>The farm's public HTTP API. Reads return null while the API (or its database) is unreachable: during a fault that is expected.</summary>
public sealed class FarmApi : IDisposable
{
    private readonly HttpClient _http;

    public FarmApi(Uri address, string key)
    {
        _http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(15) };
        _http.DefaultRequestHeaders.Add("X-Api-Key", key);
    }

    /// <summary>Whether <c>GET /api/workers</c> exists; false after it answered 404 once.</summary>
    public bool HasWorkersEndpoint { get; private set; } = true;

    public async Task<Guid> SubmitAsync(string project, string yaml, CancellationToken cancellationToken)
    {
        using var content = new StringContent(yaml, Encoding.UTF8, "application/yaml");
        using var response = await _http.PostAsync(new Uri($"/api/projects/{project}/jobs", UriKind.Relative), content, cancellationToken);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"submit answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
        }

        return (await response.Content.ReadFromJsonAsync<JobSnapshot>(JsonSerializerOptions.Web, cancellationToken))!.Id;
    }

    public async Task<JobSnapshot?> JobAsync(Guid jobId, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _http.GetAsync(new Uri($"/api/jobs/{jobId}", UriKind.Relative), cancellationToken);
            return response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JobSnapshot>(JsonSerializerOptions.Web, cancellationToken) : null;
        }
        catch (Exception e) when (IsUnreachable(e, cancellationToken))
        {
            return null;
        }
    }

    public async Task<IReadOnlyList<WorkerSnapshot>?> WorkersAsync(CancellationToken cancellationToken)
    {
        if (!HasWorkersEndpoint)
        {
            return null;
        }

        try
        {
            using var response = await _http.GetAsync(new Uri("/api/workers", UriKind.Relative), cancellationToken);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                HasWorkersEndpoint = false;
            }

            return response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<List<WorkerSnapshot>>(JsonSerializerOptions.Web, cancellationToken) : null;
        }
        catch (Exception e) when (IsUnreachable(e, cancellationToken))
        {
            return null;
        }
    }

    /// <summary><c>POST /api/jobs/{id}/{action}</c> (cancel, pause, resume, retry); returns null on 200, else what went wrong.</summary>
    public async Task<string?> ControlAsync(Guid jobId, string action, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _http.PostAsync(new Uri($"/api/jobs/{jobId}/{action}", UriKind.Relative), null, cancellationToken);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return null;
            }

            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            return $"{action} answered HTTP {(int)response.StatusCode} {ProblemSummary(body)}".Trim();
        }
        catch (Exception e) when (IsUnreachable(e, cancellationToken))
        {
            return $"{action}: {e.Message}";
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>A problem details body as "title: detail", so that a table cell stays readable.</summary>
    private static string ProblemSummary(string body)
    {
        try
        {
            using var problem = JsonDocument.Parse(body);
            var root = problem.RootElement;
            return string.Join(": ", new[] { "title", "detail" }.Select(p => root.TryGetProperty(p, out var v) ? v.GetString() : null).OfType<string>());
        }
        catch (JsonException)
        {
            return body.Length > 120 ? body[..120] : body;
        }
    }

    private static bool IsUnreachable(Exception e, CancellationToken cancellationToken) =>
        e is HttpRequestException or JsonException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested);
}
