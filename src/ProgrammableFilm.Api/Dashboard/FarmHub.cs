using Microsoft.AspNetCore.SignalR;

namespace ProgrammableFilm.Api.Dashboard;

/// <summary>
/// The dashboard's live channel. Every connection gets fleet updates; job progress and spend go only to the
/// connections that watch the job's project (group <c>project:{name}</c>).
/// </summary>
public sealed class FarmHub(LiveSubscriptions subscriptions) : Hub
{
    public const string Path = "/hubs/farm";

    /// <summary>Pushed messages: <c>fleet</c> (a <c>FleetSummary</c>), <c>job</c> (a <c>JobProgress</c>), <c>spend</c> (<c>{ project }</c>), <c>budget</c> (a threshold crossing: <c>{ project, jobId, level }</c>, <c>jobId</c> null for the project's own budget).</summary>
    public static string GroupOf(string project) => $"project:{project}";

    /// <summary>Admin connections: the fleet is the farm's, not a project's.</summary>
    public const string FleetGroup = "fleet";

    /// <summary>Joins a project's group: an admin key any project's, a project key only its own.</summary>
    public async Task WatchProject(string project)
    {
        if (!IsProjectName(project) || !(IsAdmin || Context.User?.FindFirst("project")?.Value == project))
        {
            // The same answer for another project's name as for a bad one: names are not confirmed across projects.
            throw new HubException($"there is no project '{project}' for this key");
        }

        await Groups.AddToGroupAsync(Context.ConnectionId, GroupOf(project));
        subscriptions.Watch(Context.ConnectionId, project);
    }

    // From the connection's claims: a long-polling connection's later requests carry the user, not the request's features.
    private bool IsAdmin => Context.User?.IsInRole("admin") == true;

    /// <summary>The spec's rule for project names (lower-case letters, digits, '-'; 1 to 63 characters).</summary>
    internal static bool IsProjectName(string project) =>
        project is { Length: > 0 and <= 63 } && project[0] != '-' && project.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-');

    public async Task UnwatchProject(string project)
    {
        await Groups.RemoveFromGroupAsync(Context.ConnectionId, GroupOf(project));
        subscriptions.Unwatch(Context.ConnectionId, project);
    }

    public override async Task OnConnectedAsync()
    {
        subscriptions.Connected(Context.ConnectionId);
        if (IsAdmin)
        {
            await Groups.AddToGroupAsync(Context.ConnectionId, FleetGroup);
        }

        await base.OnConnectedAsync();
    }

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        subscriptions.Disconnected(Context.ConnectionId);
        return base.OnDisconnectedAsync(exception);
    }
}

/// <summary>Which connections this process holds and the projects they watch: the live updates query only for those.</summary>
public sealed class LiveSubscriptions
{
    private readonly Dictionary<string, HashSet<string>> _projects = new(StringComparer.Ordinal);

    public bool Any
    {
        get
        {
            lock (_projects)
            {
                return _projects.Count > 0;
            }
        }
    }

    public IReadOnlyList<string> WatchedProjects()
    {
        lock (_projects)
        {
            return _projects.Values.SelectMany(p => p).Distinct(StringComparer.Ordinal).ToList();
        }
    }

    public void Connected(string connection)
    {
        lock (_projects)
        {
            _projects.TryAdd(connection, new HashSet<string>(StringComparer.Ordinal));
        }
    }

    public void Disconnected(string connection)
    {
        lock (_projects)
        {
            _projects.Remove(connection);
        }
    }

    public void Watch(string connection, string project)
    {
        lock (_projects)
        {
            if (_projects.TryGetValue(connection, out var projects))
            {
                projects.Add(project);
            }
        }
    }

    public void Unwatch(string connection, string project)
    {
        lock (_projects)
        {
            if (_projects.TryGetValue(connection, out var projects))
            {
                projects.Remove(project);
            }
        }
    }
}
