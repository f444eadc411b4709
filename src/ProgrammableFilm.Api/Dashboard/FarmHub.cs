using Microsoft.AspNetCore.SignalR;

namespace ProgrammableFilm.Api.Dashboard;

/// <summary>
/// The dashboard's live channel. Every connection gets fleet updates; job progress and spend go only to the
/// connections that watch the job's project (group <c>project:{name}</c>).
/// </summary>
public sealed class FarmHub(LiveSubscriptions subscriptions) : Hub
{
    public const string Path = "/hubs/farm";

    /// <summary>Pushed messages: <c>fleet</c> (a <c>FleetSummary</c>), <c>job</c> (a <c>JobProgress</c>), <c>spend</c> (<c>{ project }</c>).</summary>
    public static string GroupOf(string project) => $"project:{project}";

    /// <summary>Joins a project's group. Per-project access checks belong here, before the join.</summary>
    public async Task WatchProject(string project)
    {
        if (!IsProjectName(project))
        {
            throw new HubException($"'{project}' is not a project name");
        }

        await Groups.AddToGroupAsync(Context.ConnectionId, GroupOf(project));
        subscriptions.Watch(Context.ConnectionId, project);
    }

    /// <summary>The spec's rule for project names (lower-case letters, digits, '-'; 1 to 63 characters).</summary>
    internal static bool IsProjectName(string project) =>
        project is { Length: > 0 and <= 63 } && project[0] != '-' && project.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-');

    public async Task UnwatchProject(string project)
    {
        await Groups.RemoveFromGroupAsync(Context.ConnectionId, GroupOf(project));
        subscriptions.Unwatch(Context.ConnectionId, project);
    }

    public override Task OnConnectedAsync()
    {
        subscriptions.Connected(Context.ConnectionId);
        return base.OnConnectedAsync();
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
