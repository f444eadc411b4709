using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ProgrammableFilm.Data;

public enum DatabaseProvider
{
    Postgres,
    Sqlite,
}

/// <summary>Which database the coordinator uses: <c>Database:Provider</c> and <c>Database:ConnectionString</c>.</summary>
public sealed record DatabaseOptions(DatabaseProvider Provider, string ConnectionString)
{
    public static DatabaseOptions Sqlite(string path) => new(DatabaseProvider.Sqlite, $"Data Source={path};Default Timeout=60;Pooling=True");

    public static DatabaseOptions FromConfiguration(IConfiguration configuration)
    {
        var provider = configuration["Database:Provider"] ?? "postgres";
        var connectionString = configuration["Database:ConnectionString"]
            ?? throw new InvalidOperationException("Database:ConnectionString is not set (environment: Database__ConnectionString).");
        return provider.ToLowerInvariant() switch
        {
            "postgres" => new DatabaseOptions(DatabaseProvider.Postgres, connectionString),
            "sqlite" => new DatabaseOptions(DatabaseProvider.Sqlite, connectionString),
            _ => throw new InvalidOperationException($"Database:Provider '{provider}' is not 'postgres' or 'sqlite'."),
        };
    }
}

public static class DataExtensions
{
    /// <summary>Registers the farm database (a context factory: consumers and the dispatcher open short-lived contexts).</summary>
    public static IServiceCollection AddFarmData(this IServiceCollection services, DatabaseOptions options)
    {
        services.AddSingleton(options);
        services.AddDbContextFactory<FarmDbContext>(builder =>
        {
            if (options.Provider == DatabaseProvider.Postgres)
            {
                builder.UseNpgsql(WithAutoPrepare(options.ConnectionString));
            }
            else
            {
                builder.UseSqlite(options.ConnectionString);
            }
        });
        services.AddSingleton<DatabaseMigrator>();
        return services;
    }

    /// <summary>
    /// The farm sends the same few dozen statements thousands of times a second; prepared once per connection, each
    /// skips PostgreSQL's parse and plan. A pooled connection is not reset when it is taken again: the farm leaves no
    /// session state behind (its locks and settings are the transaction's), and the reset (<c>DISCARD ALL</c>, which
    /// also drops the prepared statements) was one statement more per request. A connection string that says
    /// otherwise wins.
    /// </summary>
    public static string WithAutoPrepare(string connectionString)
    {
        // NpgsqlConnectionStringBuilder.ContainsKey is true for every keyword it knows, set or not.
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        if (!given.ContainsKey("Max Auto Prepare") && !given.ContainsKey("MaxAutoPrepare"))
        {
            builder.MaxAutoPrepare = 64;
        }

        if (!given.ContainsKey("No Reset On Close") && !given.ContainsKey("NoResetOnClose"))
        {
            builder.NoResetOnClose = true;
        }

        return builder.ConnectionString;
    }
}
