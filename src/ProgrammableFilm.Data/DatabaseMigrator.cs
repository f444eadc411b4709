using System.Data.Common;
using System.Reflection;
using Microsoft.EntityFrameworkCore;

namespace ProgrammableFilm.Data;

/// <summary>
/// Applies the SQL migrations embedded in this assembly, in order, each in its own transaction, recording them in
/// <c>schema_migrations</c>. It is one explicit step (<c>ProgrammableFilm.Api migrate</c>, or the embedded host
/// before it starts), never something every replica races at start-up; on PostgreSQL an advisory lock still makes
/// two concurrent runs safe.
/// </summary>
public sealed class DatabaseMigrator(IDbContextFactory<FarmDbContext> contextFactory, DatabaseOptions options)
{
    private const long MigrationLockKey = 0x7066_696C_6D00;

    /// <summary>Applies pending migrations and returns their names.</summary>
    public async Task<IReadOnlyList<string>> MigrateAsync(CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(cancellationToken);
        if (options.Provider == DatabaseProvider.Sqlite)
        {
            // WAL lets readers (status queries) run beside the single writer; it persists in the file.
            await ExecuteAsync(connection, null, "PRAGMA journal_mode=WAL;", cancellationToken);
        }

        await ExecuteAsync(connection, null, "CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL);", cancellationToken);
        var applied = new List<string>();
        foreach (var (version, sql) in Scripts(options.Provider))
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            if (options.Provider == DatabaseProvider.Postgres)
            {
                await ExecuteAsync(connection, transaction, $"SELECT pg_advisory_xact_lock({MigrationLockKey});", cancellationToken);
            }

            if (await IsAppliedAsync(connection, transaction, version, cancellationToken))
            {
                continue;
            }

            await ExecuteAsync(connection, transaction, sql, cancellationToken);
            await ExecuteAsync(connection, transaction, $"INSERT INTO schema_migrations (version, applied_at) VALUES ('{version}', '{DateTime.UtcNow:O}');", cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            applied.Add(version);
        }

        return applied;
    }

    /// <summary>Versions in the code that the database has not applied; services refuse to start while any remain.</summary>
    public async Task<IReadOnlyList<string>> PendingAsync(CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var connection = db.Database.GetDbConnection();
        await connection.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = options.Provider == DatabaseProvider.Postgres
            ? "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
            : "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'";
        var exists = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) > 0;
        var pending = new List<string>();
        foreach (var (version, _) in Scripts(options.Provider))
        {
            if (!exists || !await IsAppliedAsync(connection, null, version, cancellationToken))
            {
                pending.Add(version);
            }
        }

        return pending;
    }

    private static async Task<bool> IsAppliedAsync(DbConnection connection, DbTransaction? transaction, string version, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"SELECT count(*) FROM schema_migrations WHERE version = '{version}'";
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }

    private static async Task ExecuteAsync(DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static IEnumerable<(string Version, string Sql)> Scripts(DatabaseProvider provider)
    {
        var assembly = typeof(DatabaseMigrator).Assembly;
        var prefix = $"{assembly.GetName().Name}.Migrations.{(provider == DatabaseProvider.Postgres ? "postgres" : "sqlite")}.";
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            yield return (Path.GetFileNameWithoutExtension(resource[prefix.Length..]), reader.ReadToEnd());
        }
    }
}
