using System.Net.Sockets;
using Npgsql;

namespace ProgrammableFilm.Bench.Faults;

/// <summary>An attempt that was running when a fault hit.</summary>
public sealed record HeldAttempt(Guid Id, Guid TaskId, string TaskKey, int Number, string? WorkerId);

/// <summary>What became of a held attempt: its state now, and when its task was claimed again (if it was).</summary>
public sealed record AttemptFate(Guid Id, string State, DateTime? RerunClaimedAt);

public sealed record ShotRow(Guid Id, string Name, string State, int FrameCount, string? VideoPath);

/// <summary>The double-billing measure: ledger rows sharing an attempt id, and tasks billed as succeeded more than once.</summary>
public sealed record Billing(int DuplicateAttemptRows, int TasksSucceededTwice)
{
    public int Total => DuplicateAttemptRows + TasksSucceededTwice;
}

/// <summary>
/// Read-only queries on the farm's database (the harness never writes it: only the coordinator does). Pooling is off so
/// that a restarted PostgreSQL costs one failed read, not a pool of dead connections; a failed read returns null.
/// </summary>
public sealed class FarmDatabase(string connectionString)
{
    private readonly string _connectionString = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 3, CommandTimeout = 10 }.ConnectionString;

    public static async Task<string> CreateAsync(string admin, string name)
    {
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString;
    }

    public async Task<string?> JobStateAsync(Guid jobId, CancellationToken cancellationToken) =>
        (await QueryAsync("SELECT state FROM jobs WHERE id = @job", c => c.Parameters.AddWithValue("job", jobId), r => r.GetString(0), cancellationToken))?.FirstOrDefault();

    /// <summary>The fraction of the job's tasks that succeeded; null when the database does not answer.</summary>
    public async Task<double?> ProgressAsync(Guid jobId, CancellationToken cancellationToken) =>
        (await QueryAsync(
            "SELECT count(*) FILTER (WHERE state = 'Succeeded')::float8 / greatest(count(*), 1) FROM tasks WHERE job_id = @job",
            c => c.Parameters.AddWithValue("job", jobId),
            r => r.GetDouble(0),
            cancellationToken))?.FirstOrDefault();

    /// <summary>The job's attempts in state Claimed (a worker holds them), oldest claim first.</summary>
    public Task<List<HeldAttempt>?> HeldAttemptsAsync(Guid jobId, CancellationToken cancellationToken) => QueryAsync(
        """
        SELECT a.id, a.task_id, t.key, a.number, a.worker_id
        FROM attempts a JOIN tasks t ON t.id = a.task_id
        WHERE t.job_id = @job AND a.state = 'Claimed'
        ORDER BY a.claimed_at
        """,
        c => c.Parameters.AddWithValue("job", jobId),
        r => new HeldAttempt(r.GetGuid(0), r.GetGuid(1), r.GetString(2), r.GetInt32(3), r.IsDBNull(4) ? null : r.GetString(4)),
        cancellationToken);

    public Task<List<AttemptFate>?> FatesAsync(IReadOnlyList<Guid> attemptIds, CancellationToken cancellationToken) => QueryAsync(
        """
        SELECT a.id, a.state,
               (SELECT min(b.claimed_at) FROM attempts b WHERE b.task_id = a.task_id AND b.number > a.number AND b.claimed_at IS NOT NULL)
        FROM attempts a WHERE a.id = ANY(@ids)
        """,
        c => c.Parameters.AddWithValue("ids", attemptIds.ToArray()),
        r => new AttemptFate(r.GetGuid(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetDateTime(2)),
        cancellationToken);

    public Task<List<ShotRow>?> ShotsAsync(Guid jobId, CancellationToken cancellationToken) => QueryAsync(
        "SELECT id, name, state, frame_count, video_path FROM shots WHERE job_id = @job",
        c => c.Parameters.AddWithValue("job", jobId),
        r => new ShotRow(r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetInt32(3), r.IsDBNull(4) ? null : r.GetString(4)),
        cancellationToken);

    public async Task<Billing?> BillingAsync(Guid jobId, CancellationToken cancellationToken) => (await QueryAsync(
        """
        SELECT (SELECT count(*) FROM (SELECT attempt_id FROM usage_ledger WHERE job_id = @job GROUP BY attempt_id HAVING count(*) > 1) d),
               (SELECT count(*) FROM (SELECT task_id FROM usage_ledger WHERE job_id = @job AND outcome = 'succeeded' GROUP BY task_id HAVING count(*) > 1) s)
        """,
        c => c.Parameters.AddWithValue("job", jobId),
        r => new Billing((int)r.GetInt64(0), (int)r.GetInt64(1)),
        cancellationToken))?.Single();

    /// <summary>How many of the job's attempts are in each state.</summary>
    public async Task<Dictionary<string, long>?> AttemptStatesAsync(Guid jobId, CancellationToken cancellationToken) => (await QueryAsync(
        "SELECT a.state, count(*) FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.job_id = @job GROUP BY a.state",
        c => c.Parameters.AddWithValue("job", jobId),
        r => (State: r.GetString(0), Count: r.GetInt64(1)),
        cancellationToken))?.ToDictionary(r => r.State, r => r.Count, StringComparer.Ordinal);

    private async Task<List<T>?> QueryAsync<T>(string sql, Action<NpgsqlCommand> bind, Func<NpgsqlDataReader, T> read, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new NpgsqlConnection(_connectionString);
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand(sql, connection);
            bind(command);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            var rows = new List<T>();
            while (await reader.ReadAsync(cancellationToken))
            {
                rows.Add(read(reader));
            }

            return rows;
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException or IOException)
        {
            return null;
        }
    }
}
