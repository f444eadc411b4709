using Npgsql;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// What a job's status is made of: the job, its shots with their costs, the jobs it waits for, the workers it blocked,
/// the budget that stops it, and its task counts with when a big job's were counted (null counts: not read yet).
/// </summary>
internal sealed record StatusRead(
    StatusRead.JobRow Head,
    IReadOnlyList<StatusRead.ShotRow> Shots,
    IReadOnlyList<Guid> After,
    IReadOnlyList<string> BlockedWorkers,
    string? StoppedBy,
    IReadOnlyList<JobReports.TaskGroup>? Counts,
    DateTime? CountedAt)
{
    internal sealed record JobRow(Guid Id, string Project, string? Name, string Lane, int Priority, JobState State, string? Error, DateTime CreatedAt, DateTime? FinishedAt, int TaskCount, bool Paused, int Retries);

    internal sealed record ShotRow(
        Guid Id, string Name, string Engine, ShotState State, string? Error, int FrameCount, int TaskCount, string? VideoPath, string? ManifestPath,
        double? Flicker, double? AnchorPaletteDrift, double? AnchorColourDrift, DateTime? PlannedAt, long CostMicros);

    /// <summary>
    /// The job's row with its lists, its shots with their costs, and its task counts (a small job's counted from its
    /// tasks, a big job's read from its roll-up), sent to PostgreSQL as one batch: under fifty clients a status read
    /// costs what its round trips cost, and this is one. Null for an unknown job.
    /// </summary>
    public static async Task<StatusRead?> InOneRoundTripAsync(FarmDbContext db, Guid jobId, int rollupAbove, CancellationToken cancellationToken)
    {
        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        await db.Database.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var batch = new NpgsqlBatch(connection)
            {
                BatchCommands =
                {
                    Command(JobSql, jobId),
                    Command(ShotsSql, jobId),
                    Command(CountsSql, jobId, rollupAbove),
                },
            };
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                return null;
            }

            var head = new JobRow(
                reader.GetGuid(0), reader.GetString(1), NullableString(reader, 2), reader.GetString(3), reader.GetInt32(4), Enum.Parse<JobState>(reader.GetString(5)),
                NullableString(reader, 6), reader.GetDateTime(7), reader.IsDBNull(8) ? null : reader.GetDateTime(8), reader.GetInt32(9), reader.GetBoolean(10), reader.GetInt32(11));
            var after = reader.GetFieldValue<Guid[]>(12);
            var blockedWorkers = reader.GetFieldValue<string[]>(13);
            var stoppedBy = Money.Budgets.InPrecedence(reader.GetFieldValue<string[]>(14));
            DateTime? countedAt = reader.IsDBNull(15) ? null : reader.GetDateTime(15);

            await reader.NextResultAsync(cancellationToken);
            var shots = new List<ShotRow>();
            while (await reader.ReadAsync(cancellationToken))
            {
                shots.Add(new ShotRow(
                    reader.GetGuid(0), reader.GetString(1), reader.GetString(2), Enum.Parse<ShotState>(reader.GetString(3)), NullableString(reader, 4),
                    reader.GetInt32(5), reader.GetInt32(6), NullableString(reader, 7), NullableString(reader, 8), NullableDouble(reader, 9),
                    NullableDouble(reader, 10), NullableDouble(reader, 11), reader.IsDBNull(12) ? null : reader.GetDateTime(12), reader.GetInt64(13)));
            }

            await reader.NextResultAsync(cancellationToken);
            var counts = new List<JobReports.TaskGroup>();
            while (await reader.ReadAsync(cancellationToken))
            {
                counts.Add(new JobReports.TaskGroup(jobId, reader.GetGuid(0), Enum.Parse<RenderTaskState>(reader.GetString(1)), reader.GetInt32(2), reader.GetInt64(3), reader.GetDouble(4)));
            }

            return new StatusRead(head, shots, after, blockedWorkers, stoppedBy, counts, countedAt);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private const string JobSql = """
        SELECT j.id, j.project, j.name, j.lane, j.priority, j.state, j.error, j.created_at, j.finished_at, j.task_count, j.paused, j.retries,
               ARRAY(SELECT d.depends_on_job_id FROM job_dependencies AS d WHERE d.job_id = j.id),
               ARRAY(SELECT f.worker_id FROM job_worker_failures AS f WHERE f.job_id = j.id AND f.blocked_at IS NOT NULL),
               ARRAY(SELECT st.budget FROM budget_stops AS st WHERE st.job_id = j.id),
               (SELECT r.counted_at FROM task_count_rollups AS r WHERE r.job_id = j.id)
        FROM jobs AS j WHERE j.id = $1
        """;

    private const string ShotsSql = """
        SELECT s.id, s.name, s.engine, s.state, s.error, s.frame_count, s.task_count, s.video_path, s.manifest_path, s.flicker,
               s.anchor_palette_drift, s.anchor_colour_drift, s.planned_at,
               COALESCE((SELECT sum(u.cost_micros) FROM usage_rollups AS u WHERE u.job_id = s.job_id AND u.shot_id = s.id), 0)::bigint
        FROM shots AS s WHERE s.job_id = $1 ORDER BY s.ordinal
        """;

    /// <summary>
    /// Each branch is gated by the job's size, a condition PostgreSQL evaluates once before reading any row: a big
    /// job's tasks are never counted here.
    /// </summary>
    private const string CountsSql = $"""
        SELECT shot_id, state, {JobReports.CountedTaskColumns}
        FROM tasks
        WHERE job_id = $1 AND (SELECT j.task_count FROM jobs AS j WHERE j.id = $1) <= $2
        GROUP BY shot_id, state
        UNION ALL
        SELECT c.shot_id, c.state, c.tasks, c.weight, c.weighted_progress
        FROM shot_task_counts AS c
        WHERE c.job_id = $1 AND (SELECT j.task_count FROM jobs AS j WHERE j.id = $1) > $2
        """;

    internal static NpgsqlBatchCommand Command(string sql, params object[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        return command;
    }

    private static string? NullableString(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static double? NullableDouble(NpgsqlDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetDouble(ordinal);
}
