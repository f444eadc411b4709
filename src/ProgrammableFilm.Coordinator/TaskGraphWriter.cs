using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;

namespace ProgrammableFilm.Coordinator;

/// <summary>
/// Writes a job's planned tasks and their dependency edges inside the submission's transaction. On PostgreSQL a
/// binary COPY (a 100,000-task job is a few hundred thousand rows: EF's inserts take tens of seconds, COPY about
/// one); SQLite (embedded, small jobs) goes through EF. Rows are written with the importer's synchronous calls: they
/// fill a buffer and only its flushes touch the socket, where an awaited call per field (19 per task, two million for
/// a 100,000-task job) pays for an async state machine each; the start and the completion stay asynchronous.
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
                writer.StartRow();
                writer.Write(task.Id, NpgsqlDbType.Uuid);
                writer.Write(task.ShotId, NpgsqlDbType.Uuid);
                writer.Write(task.JobId, NpgsqlDbType.Uuid);
                writer.Write(task.Key, NpgsqlDbType.Text);
                writer.Write(task.Kind, NpgsqlDbType.Text);
                writer.Write(task.FirstFrame, NpgsqlDbType.Integer);
                writer.Write(task.LastFrame, NpgsqlDbType.Integer);
                WriteNullable(writer, task.StartKeyframe, NpgsqlDbType.Integer);
                WriteNullable(writer, task.EndKeyframe, NpgsqlDbType.Integer);
                writer.Write(task.State.ToString(), NpgsqlDbType.Text);
                writer.Write(task.PendingDependencies, NpgsqlDbType.Integer);
                writer.Write(task.AttemptCount, NpgsqlDbType.Integer);
                writer.Write(task.Lane, NpgsqlDbType.Integer);
                writer.Write(task.Priority, NpgsqlDbType.Integer);
                writer.Write(task.Progress, NpgsqlDbType.Double);
                writer.Write(task.CreatedAt, NpgsqlDbType.TimestampTz);
                writer.Write(task.UpdatedAt, NpgsqlDbType.TimestampTz);
                WriteNullable(writer, task.ReadyAt, NpgsqlDbType.TimestampTz);
                if (task.CopyTo is null)
                {
                    writer.WriteNull();
                }
                else
                {
                    writer.Write(task.CopyTo, NpgsqlDbType.Text);
                }
            }

            await writer.CompleteAsync(cancellationToken);
        }

        await using (var writer = await connection.BeginBinaryImportAsync("COPY task_dependencies (task_id, depends_on_task_id) FROM STDIN (FORMAT BINARY)", cancellationToken))
        {
            foreach (var edge in edges)
            {
                writer.StartRow();
                writer.Write(edge.TaskId, NpgsqlDbType.Uuid);
                writer.Write(edge.DependsOnTaskId, NpgsqlDbType.Uuid);
            }

            await writer.CompleteAsync(cancellationToken);
        }
    }

    private static void WriteNullable<T>(NpgsqlBinaryImporter writer, T? value, NpgsqlDbType type)
        where T : struct
    {
        if (value is { } present)
        {
            writer.Write(present, type);
        }
        else
        {
            writer.WriteNull();
        }
    }
}
