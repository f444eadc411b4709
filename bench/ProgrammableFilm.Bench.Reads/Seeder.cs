using System.Buffers.Binary;
using Npgsql;
using NpgsqlTypes;

namespace ProgrammableFilm.Bench.Reads;

public sealed record Seeded(int Tasks, long Attempts, long LedgerRows, int Jobs, int Projects, int Workers, Guid BigJob, Guid SmallJob, string BusyProject, Guid BigShot);

/// <summary>
/// A farm's history, written by binary COPY into a database the real migrations made: 30% of the tasks in one big
/// running job (shots of 9,999 one-frame keyframes and an assembly; two thirds done, 16 running, the rest queued), the
/// rest in 100-task jobs (two shots) spread over 20 projects, 90% finished and 10% queued. Finished tasks share the
/// ledger rows between them (the failed attempts before each success), one attempt per ledger row. Triggers (foreign
/// keys, the ledger roll-up) are off while copying, the plain indexes are built afterwards and the ledger roll-up is
/// summed once at the end: the state the trigger would have left, reached in minutes instead of hours.
/// </summary>
public sealed class Seeder(string connectionString, SeedShape shape)
{
    private const int Projects = 20;
    private const int Workers = 200;
    private const int BigShotTasks = 10_000;
    private const int SmallShotTasks = 50;
    private static readonly DateTime Epoch = new(2026, 11, 1, 0, 0, 0, DateTimeKind.Utc);

    private readonly int _bigShots = Math.Max(1, shape.Tasks * 3 / 10 / BigShotTasks);
    private int BigTasks => _bigShots * BigShotTasks;
    private int SmallJobs => Math.Max(1, (shape.Tasks - BigTasks) / (2 * SmallShotTasks));
    private int TotalTasks => BigTasks + SmallJobs * 2 * SmallShotTasks;

    public static async Task<string> CreateDatabaseAsync(string admin)
    {
        var name = $"pfilm_bench_reads_{Guid.NewGuid():N}"[..40];
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await new NpgsqlCommand($"CREATE DATABASE {name}", connection).ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(admin) { Database = name, CommandTimeout = 0 }.ConnectionString;
    }

    public async Task<Seeded> SeedAsync()
    {
        var tasks = EnumerateTasks().ToList();
        var finished = tasks.Count(t => t.State == "Succeeded");
        var perTask = shape.LedgerRows / finished;
        var extra = shape.LedgerRows % finished;

        await using var admin = await OpenAsync();
        var indexes = new List<(string Name, string Definition)>();
        await using (var reader = await new NpgsqlCommand("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname LIKE 'ix_%'", admin).ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                indexes.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        foreach (var (name, _) in indexes)
        {
            await new NpgsqlCommand($"DROP INDEX {name}", admin).ExecuteNonQueryAsync();
        }

        await CopyJobsAndShotsAsync(tasks);
        long attempts = 0;
        await Task.WhenAll(
            Task.Run(() => CopyTasksAsync(tasks, perTask, extra)),
            Task.Run(async () => attempts = await CopyAttemptsAsync(tasks, perTask, extra)),
            Task.Run(() => CopyLedgerAsync(tasks, perTask, extra)),
            Task.Run(CopyWorkersAsync));

        await Task.WhenAll(indexes.Select(index => Task.Run(async () =>
        {
            await using var connection = await OpenAsync();
            await new NpgsqlCommand(index.Definition, connection).ExecuteNonQueryAsync();
        })));
        await new NpgsqlCommand(
            """
            INSERT INTO usage_rollups (job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, attempts, cost_micros, device_seconds, energy_joules)
            SELECT job_id, shot_id, device_sku, dollars_per_hour, energy_estimated, count(*), sum((cost * 1000000)::bigint), sum(device_seconds), sum(energy_joules)
            FROM usage_ledger GROUP BY job_id, shot_id, device_sku, dollars_per_hour, energy_estimated
            """, admin).ExecuteNonQueryAsync();
        // The triggers were off for the COPY: the per-project spend counter (budgets, project totals) and its per-minute
        // roll-up (burn rate, spend series) are summed once too.
        await new NpgsqlCommand(
            """
            INSERT INTO project_spend (project, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
            SELECT project, count(*), sum((cost * 1000000)::bigint), sum(device_seconds), sum(energy_joules), 0
            FROM usage_ledger GROUP BY project
            """, admin).ExecuteNonQueryAsync();
        await new NpgsqlCommand(
            """
            INSERT INTO project_spend_minutes (project, minute, attempts, cost_micros, device_seconds, energy_joules, co2e_grams)
            SELECT project, date_bin('1 minute', recorded_at, TIMESTAMPTZ '1970-01-01 00:00:00+00'), count(*), sum((cost * 1000000)::bigint), sum(device_seconds), sum(energy_joules), 0
            FROM usage_ledger GROUP BY 1, 2
            """, admin).ExecuteNonQueryAsync();
        await new NpgsqlCommand("VACUUM ANALYZE", admin).ExecuteNonQueryAsync();

        return new Seeded(tasks.Count, attempts, shape.LedgerRows, SmallJobs + 1, Projects, Workers, JobId(0), JobId(1), Project(0), ShotId(0, 0));
    }

    private async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await new NpgsqlCommand("SET session_replication_role = replica", connection).ExecuteNonQueryAsync();
        return connection;
    }

    private sealed record SeedTask(int Index, int Job, int Shot, int Frame, bool Assemble, string State, int Lane);

    /// <summary>Job 0 is the big one; job j ≥ 1 is a small one, queued when j % 10 == 0.</summary>
    private IEnumerable<SeedTask> EnumerateTasks()
    {
        var index = 0;
        var done = BigTasks * 2 / 3;
        for (var shot = 0; shot < _bigShots; shot++)
        {
            for (var frame = 0; frame < BigShotTasks; frame++)
            {
                var assemble = frame == BigShotTasks - 1;
                var state = assemble ? "Blocked" : index < done ? "Succeeded" : index < done + 16 ? "Running" : "Ready";
                yield return new SeedTask(index++, 0, shot, frame, assemble, state, 1);
            }
        }

        for (var job = 1; job <= SmallJobs; job++)
        {
            var queued = job % 10 == 0;
            for (var shot = 0; shot < 2; shot++)
            {
                for (var frame = 0; frame < SmallShotTasks; frame++)
                {
                    var assemble = frame == SmallShotTasks - 1;
                    yield return new SeedTask(index++, job, shot, frame, assemble, queued ? (assemble ? "Blocked" : "Ready") : "Succeeded", job % 7 == 0 ? 0 : 1);
                }
            }
        }
    }

    private static Guid Id(byte kind, long value, long sub = 0)
    {
        Span<byte> bytes = stackalloc byte[16];
        bytes[0] = kind;
        BinaryPrimitives.WriteInt64BigEndian(bytes[4..], value);
        BinaryPrimitives.WriteInt32BigEndian(bytes[12..], (int)sub);
        return new Guid(bytes, bigEndian: true);
    }

    private static Guid JobId(int job) => Id(1, job);

    private static Guid ShotId(int job, int shot) => Id(2, job, shot);

    private static Guid TaskId(int index) => Id(3, index);

    private static Guid AttemptId(int task, int number) => Id(4, task, number);

    private static string Project(int job) => $"studio-{job % Projects:D2}";

    private static DateTime JobCreated(int job) => Epoch.AddMinutes(job);

    private int Attempts(SeedTask task, long perTask, long extra) =>
        task.State == "Succeeded" ? (int)perTask + (task.Index < extra ? 1 : 0) : task.State == "Running" ? 1 : 0;

    private async Task CopyJobsAndShotsAsync(List<SeedTask> tasks)
    {
        await using var connection = await OpenAsync();
        await using (var writer = await connection.BeginBinaryImportAsync("COPY jobs (id, project, name, lane, priority, state, spec_json, created_at, finished_at, task_count) FROM STDIN (FORMAT BINARY)"))
        {
            for (var job = 0; job <= SmallJobs; job++)
            {
                var queued = job == 0 || job % 10 == 0;
                await writer.StartRowAsync();
                await writer.WriteAsync(JobId(job), NpgsqlDbType.Uuid);
                await writer.WriteAsync(Project(job), NpgsqlDbType.Text);
                await writer.WriteAsync(job == 0 ? "big" : $"job-{job}", NpgsqlDbType.Text);
                await writer.WriteAsync(job % 7 == 0 && job > 0 ? "preview" : "batch", NpgsqlDbType.Text);
                await writer.WriteAsync(50, NpgsqlDbType.Integer);
                await writer.WriteAsync(job == 0 ? "Running" : queued ? "Queued" : "Succeeded", NpgsqlDbType.Text);
                await writer.WriteAsync("{}", NpgsqlDbType.Text);
                await writer.WriteAsync(JobCreated(job), NpgsqlDbType.TimestampTz);
                if (queued)
                {
                    await writer.WriteNullAsync();
                }
                else
                {
                    await writer.WriteAsync(JobCreated(job).AddMinutes(5), NpgsqlDbType.TimestampTz);
                }

                await writer.WriteAsync(job == 0 ? BigTasks : 2 * SmallShotTasks, NpgsqlDbType.Integer);
            }

            await writer.CompleteAsync();
        }

        await using (var writer = await connection.BeginBinaryImportAsync("COPY shots (id, job_id, ordinal, name, prompt, duration_seconds, fps, width, height, steps, guidance, seed, engine, keyframe_interval, frame_count, state, folder, task_count, planned_at, shot_name, lineage_id) FROM STDIN (FORMAT BINARY)"))
        {
            for (var job = 0; job <= SmallJobs; job++)
            {
                var (shots, perShot) = job == 0 ? (_bigShots, BigShotTasks) : (2, SmallShotTasks);
                var queued = job == 0 || job % 10 == 0;
                for (var shot = 0; shot < shots; shot++)
                {
                    await writer.StartRowAsync();
                    await writer.WriteAsync(ShotId(job, shot), NpgsqlDbType.Uuid);
                    await writer.WriteAsync(JobId(job), NpgsqlDbType.Uuid);
                    await writer.WriteAsync(shot, NpgsqlDbType.Integer);
                    await writer.WriteAsync($"shot-{shot}", NpgsqlDbType.Text);
                    await writer.WriteAsync("a red cube drifting over a quiet sea", NpgsqlDbType.Text);
                    await writer.WriteAsync((perShot - 1) / 24.0, NpgsqlDbType.Double);
                    await writer.WriteAsync(24, NpgsqlDbType.Integer);
                    await writer.WriteAsync(64, NpgsqlDbType.Integer);
                    await writer.WriteAsync(64, NpgsqlDbType.Integer);
                    await writer.WriteAsync(20, NpgsqlDbType.Integer);
                    await writer.WriteAsync(3.0, NpgsqlDbType.Double);
                    await writer.WriteAsync((long)shot, NpgsqlDbType.Bigint);
                    await writer.WriteAsync("procedural", NpgsqlDbType.Text);
                    await writer.WriteAsync(1, NpgsqlDbType.Integer);
                    await writer.WriteAsync(perShot - 1, NpgsqlDbType.Integer);
                    await writer.WriteAsync(queued ? "Queued" : "Succeeded", NpgsqlDbType.Text);
                    await writer.WriteAsync($"{JobId(job)}/shot-{shot}", NpgsqlDbType.Text);
                    await writer.WriteAsync(perShot, NpgsqlDbType.Integer);
                    await writer.WriteAsync(JobCreated(job), NpgsqlDbType.TimestampTz);
                    await writer.WriteAsync($"shot-{shot}", NpgsqlDbType.Text);
                    await writer.WriteAsync(ShotId(job, shot), NpgsqlDbType.Uuid);
                }
            }

            await writer.CompleteAsync();
        }
    }

    private async Task CopyTasksAsync(List<SeedTask> tasks, long perTask, long extra)
    {
        await using var connection = await OpenAsync();
        await using var writer = await connection.BeginBinaryImportAsync(
            "COPY tasks (id, shot_id, job_id, key, kind, first_frame, last_frame, state, pending_dependencies, current_attempt_id, attempt_count, lane, priority, progress, created_at, updated_at, ready_at) FROM STDIN (FORMAT BINARY)");
        foreach (var task in tasks)
        {
            var attempts = Attempts(task, perTask, extra);
            var perShot = task.Job == 0 ? BigShotTasks : SmallShotTasks;
            var created = JobCreated(task.Job);
            writer.StartRow();
            writer.Write(TaskId(task.Index), NpgsqlDbType.Uuid);
            writer.Write(ShotId(task.Job, task.Shot), NpgsqlDbType.Uuid);
            writer.Write(JobId(task.Job), NpgsqlDbType.Uuid);
            writer.Write(task.Assemble ? "assemble" : $"kf-{task.Frame:D5}", NpgsqlDbType.Text);
            writer.Write(task.Assemble ? "assemble" : "keyframe", NpgsqlDbType.Text);
            writer.Write(task.Assemble ? 0 : task.Frame, NpgsqlDbType.Integer);
            writer.Write(task.Assemble ? perShot - 2 : task.Frame, NpgsqlDbType.Integer);
            writer.Write(task.State, NpgsqlDbType.Text);
            writer.Write(task.State == "Blocked" ? perShot - 1 : 0, NpgsqlDbType.Integer);
            if (attempts > 0)
            {
                writer.Write(AttemptId(task.Index, attempts), NpgsqlDbType.Uuid);
            }
            else
            {
                writer.WriteNull();
            }

            writer.Write(attempts, NpgsqlDbType.Integer);
            writer.Write(task.Lane, NpgsqlDbType.Integer);
            writer.Write(50, NpgsqlDbType.Integer);
            writer.Write(task.State == "Succeeded" ? 1.0 : task.State == "Running" ? 0.5 : 0.0, NpgsqlDbType.Double);
            writer.Write(created, NpgsqlDbType.TimestampTz);
            writer.Write(created, NpgsqlDbType.TimestampTz);
            if (task.State == "Blocked")
            {
                writer.WriteNull();
            }
            else
            {
                writer.Write(created, NpgsqlDbType.TimestampTz);
            }
        }

        await writer.CompleteAsync();
    }

    private async Task<long> CopyAttemptsAsync(List<SeedTask> tasks, long perTask, long extra)
    {
        long count = 0;
        await using var connection = await OpenAsync();
        await using (var writer = await connection.BeginBinaryImportAsync(
            "COPY attempts (id, task_id, number, state, pool, worker_id, created_at, claimed_at, finished_at, error, lease_expires_at, device_seconds, failure_class) FROM STDIN (FORMAT BINARY)"))
        {
            var now = DateTime.UtcNow;
            foreach (var task in tasks)
            {
                var attempts = Attempts(task, perTask, extra);
                for (var number = 1; number <= attempts; number++)
                {
                    var running = task.State == "Running";
                    var succeeded = !running && number == attempts;
                    var at = JobCreated(task.Job).AddSeconds(number);
                    writer.StartRow();
                    writer.Write(AttemptId(task.Index, number), NpgsqlDbType.Uuid);
                    writer.Write(TaskId(task.Index), NpgsqlDbType.Uuid);
                    writer.Write(number, NpgsqlDbType.Integer);
                    writer.Write(running ? "Claimed" : succeeded ? "Succeeded" : "Failed", NpgsqlDbType.Text);
                    writer.Write("cpu", NpgsqlDbType.Text);
                    writer.Write(Worker(task.Index + number), NpgsqlDbType.Text);
                    writer.Write(at, NpgsqlDbType.TimestampTz);
                    writer.Write(at, NpgsqlDbType.TimestampTz);
                    if (running)
                    {
                        writer.WriteNull();
                        writer.WriteNull();
                        writer.Write(now.AddHours(1), NpgsqlDbType.TimestampTz);
                    }
                    else
                    {
                        writer.Write(at.AddSeconds(1), NpgsqlDbType.TimestampTz);
                        if (succeeded)
                        {
                            writer.WriteNull();
                        }
                        else
                        {
                            writer.Write("transient: the device went away", NpgsqlDbType.Text);
                        }

                        writer.WriteNull();
                    }

                    writer.Write(running ? 0.0 : 1.0, NpgsqlDbType.Double);
                    if (running || succeeded)
                    {
                        writer.WriteNull();
                    }
                    else
                    {
                        writer.Write("transient", NpgsqlDbType.Text);
                    }

                    count++;
                }
            }

            await writer.CompleteAsync();
        }

        // Log lines for the big job's first thousand tasks: what the logs endpoint's first pages serve.
        await using (var writer = await connection.BeginBinaryImportAsync("COPY attempt_log_lines (attempt_id, seq, logged_at, level, message) FROM STDIN (FORMAT BINARY)"))
        {
            foreach (var task in tasks.Where(t => t.Job == 0).Take(1000))
            {
                for (var number = 1; number <= Attempts(task, perTask, extra); number++)
                {
                    for (var seq = 1; seq <= 3; seq++)
                    {
                        writer.StartRow();
                        writer.Write(AttemptId(task.Index, number), NpgsqlDbType.Uuid);
                        writer.Write(seq, NpgsqlDbType.Integer);
                        writer.Write(JobCreated(0).AddSeconds(seq), NpgsqlDbType.TimestampTz);
                        writer.Write("info", NpgsqlDbType.Text);
                        writer.Write($"step {seq}/3", NpgsqlDbType.Text);
                    }
                }
            }

            await writer.CompleteAsync();
        }

        return count;
    }

    private async Task CopyLedgerAsync(List<SeedTask> tasks, long perTask, long extra)
    {
        await using var connection = await OpenAsync();
        await using var writer = await connection.BeginBinaryImportAsync(
            "COPY usage_ledger (attempt_id, task_id, shot_id, job_id, project, worker_id, device_sku, device_count, device_seconds, energy_joules, energy_estimated, dollars_per_hour, cost, outcome, recorded_at) FROM STDIN (FORMAT BINARY)");
        foreach (var task in tasks.Where(t => t.State == "Succeeded"))
        {
            var attempts = Attempts(task, perTask, extra);
            for (var number = 1; number <= attempts; number++)
            {
                var seconds = 0.5 + ((task.Index * 31 + number * 17) % 100) / 20.0;
                writer.StartRow();
                writer.Write(AttemptId(task.Index, number), NpgsqlDbType.Uuid);
                writer.Write(TaskId(task.Index), NpgsqlDbType.Uuid);
                writer.Write(ShotId(task.Job, task.Shot), NpgsqlDbType.Uuid);
                writer.Write(JobId(task.Job), NpgsqlDbType.Uuid);
                writer.Write(Project(task.Job), NpgsqlDbType.Text);
                writer.Write(Worker(task.Index + number), NpgsqlDbType.Text);
                writer.Write("cpu", NpgsqlDbType.Text);
                writer.Write(1, NpgsqlDbType.Integer);
                writer.Write(seconds, NpgsqlDbType.Double);
                writer.Write(seconds * 12, NpgsqlDbType.Double);
                writer.Write(true, NpgsqlDbType.Boolean);
                writer.Write(0.04m, NpgsqlDbType.Numeric);
                writer.Write(decimal.Round((decimal)seconds * 0.04m / 3600m, 6, MidpointRounding.AwayFromZero), NpgsqlDbType.Numeric);
                writer.Write(number == attempts ? "succeeded" : "failed", NpgsqlDbType.Text);
                writer.Write(JobCreated(task.Job).AddSeconds(number + 1), NpgsqlDbType.TimestampTz);
            }
        }

        await writer.CompleteAsync();
    }

    private static string Worker(int n) => $"worker-{n % Workers:D3}";

    private async Task CopyWorkersAsync()
    {
        await using var connection = await OpenAsync();
        await using var writer = await connection.BeginBinaryImportAsync("COPY workers (id, pool, device_sku, device_count, hostname, first_seen_at, last_seen_at, slots) FROM STDIN (FORMAT BINARY)");
        var now = DateTime.UtcNow;
        for (var i = 0; i < Workers; i++)
        {
            await writer.StartRowAsync();
            await writer.WriteAsync(Worker(i), NpgsqlDbType.Text);
            await writer.WriteAsync("cpu", NpgsqlDbType.Text);
            await writer.WriteAsync("cpu", NpgsqlDbType.Text);
            await writer.WriteAsync(1, NpgsqlDbType.Integer);
            await writer.WriteAsync($"host-{i / 8:D3}", NpgsqlDbType.Text);
            await writer.WriteAsync(Epoch, NpgsqlDbType.TimestampTz);
            // A few workers have gone quiet: the fleet view shows them lost. The API's clock decides; a day is plenty.
            await writer.WriteAsync(i % 20 == 19 ? now.AddDays(-1) : now.AddDays(1), NpgsqlDbType.TimestampTz);
            await writer.WriteAsync(4, NpgsqlDbType.Integer);
        }

        await writer.CompleteAsync();
    }
}
