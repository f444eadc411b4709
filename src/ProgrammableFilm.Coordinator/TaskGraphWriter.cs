using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// Writes a job's planned tasks and their dependency edges inside the submission's transaction. On PostgreSQL a
/// binary COPY (a 100,000-task job is a few hundred thousand rows: EF's inserts take tens of seconds, COPY about
/// one); SQLite (embedded, small jobs) goes through EF.
/// </summary>
public static class TaskGraphWriter
{
    public static async Task WriteAsync(FarmDbContext db, IReadOnlyList<RenderTask> tasks, IReadOnlyList<TaskDependency> edges, CancellationToken cancellationToken)
    {
        if (!db.Database.IsNpgsql())
        {
            db.Tasks.AddRange(tasks);
            db.TaskDependencies.AddRange(edges);
            await db.SaveChangesAsync(cancellationToken);
            return;
        }

        var connection = (NpgsqlConnection)db.Database.GetDbConnection();
        await using (var writer = await connection.BeginBinaryImportAsync(
            "COPY tasks (id, shot_id, job_id, key, kind, first_frame, last_frame, start_keyframe, end_keyframe, state, pending_dependencies, attempt_count, lane, priority, progress, created_at, updated_at, ready_at, copy_to) FROM STDIN (FORMAT BINARY)",
            cancellationToken))
        {
            foreach (var task in tasks)
            {
                await writer.StartRowAsync(cancellationToken);
                await writer.WriteAsync(task.Id, NpgsqlDbType.Uuid, cancellationToken);
                await writer.WriteAsync(task.ShotId, NpgsqlDbType.Uuid, cancellationToken);
                await writer.WriteAsync(task.JobId, NpgsqlDbType.Uuid, cancellationToken);
                await writer.WriteAsync(task.Key, NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(task.Kind, NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(task.FirstFrame, NpgsqlDbType.Integer, cancellationToken);
                await writer.WriteAsync(task.LastFrame, NpgsqlDbType.Integer, cancellationToken);
                await WriteNullableAsync(writer, task.StartKeyframe, NpgsqlDbType.Integer, cancellationToken);
                await WriteNullableAsync(writer, task.EndKeyframe, NpgsqlDbType.Integer, cancellationToken);
                await writer.WriteAsync(task.State.ToString(), NpgsqlDbType.Text, cancellationToken);
                await writer.WriteAsync(task.PendingDependencies, NpgsqlDbType.Integer, cancellationToken);
                await writer.WriteAsync(task.AttemptCount, NpgsqlDbType.Integer, cancellationToken);
                await writer.WriteAsync(task.Lane, NpgsqlDbType.Integer, cancellationToken);
                await writer.WriteAsync(task.Priority, NpgsqlDbType.Integer, cancellationToken);
                await writer.WriteAsync(task.Progress, NpgsqlDbType.Double, cancellationToken);
                await writer.WriteAsync(task.CreatedAt, NpgsqlDbType.TimestampTz, cancellationToken);
                await writer.WriteAsync(task.UpdatedAt, NpgsqlDbType.TimestampTz, cancellationToken);
                await WriteNullableAsync(writer, task.ReadyAt, NpgsqlDbType.TimestampTz, cancellationToken);
                if (task.CopyTo is null)
                {
                    await writer.WriteNullAsync(cancellationToken);
                }
                else
                {
                    await writer.WriteAsync(task.CopyTo, NpgsqlDbType.Text, cancellationToken);
                }
            }

            await writer.CompleteAsync(cancellationToken);
        }

        await using (var writer = await connection.BeginBinaryImportAsync("COPY task_dependencies (task_id, depends_on_task_id) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            foreach (var edge in edges)
            {
                await writer.StartRowAsync(cancellationToken);
                await writer.WriteAsync(edge.TaskId, NpgsqlDbType.Uuid, cancellationToken);
                await writer.WriteAsync(edge.DependsOnTaskId, NpgsqlDbType.Uuid, cancellationToken);
            }

            await writer.CompleteAsync(cancellationToken);
        }
    }

    private static async Task WriteNullableAsync<T>(NpgsqlBinaryImporter writer, T? value, NpgsqlDbType type, CancellationToken cancellationToken)
        where T : struct
    {
        if (value is { } present)
        {
            await writer.WriteAsync(present, type, cancellationToken);
        }
        else
        {
            await writer.WriteNullAsync(cancellationToken);
        }
    }
}
