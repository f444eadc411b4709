using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>The farm's contexts prepare what they send often, on pooled connections that keep their statements.</summary>
public class PreparedStatementTests
{
    [Fact]
    public async Task A_query_sent_through_several_contexts_is_prepared_on_the_pooled_connection_they_share()
    {
        var prepared = await PreparedAfterTenCountsAsync(await TestEnvironment.CreateDatabaseAsync("pfilm_prepare"));

        Assert.Contains(prepared, statement => statement.Contains("FROM jobs", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_connection_string_that_turns_preparing_off_is_obeyed()
    {
        var prepared = await PreparedAfterTenCountsAsync(await TestEnvironment.CreateDatabaseAsync("pfilm_prepare") + ";Max Auto Prepare=0");

        Assert.Empty(prepared);
    }

    /// <summary>Counts the jobs ten times, each through a context of its own, and lists what the connection has prepared.</summary>
    private static async Task<List<string>> PreparedAfterTenCountsAsync(string connectionString)
    {
        await using var services = new ServiceCollection().AddFarmData(new DatabaseOptions(DatabaseProvider.Postgres, connectionString)).BuildServiceProvider();
        await services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
        var contexts = services.GetRequiredService<IDbContextFactory<FarmDbContext>>();
        for (var i = 0; i < 10; i++)
        {
            await using var db = await contexts.CreateDbContextAsync();
            await db.Jobs.CountAsync();
        }

        await using var last = await contexts.CreateDbContextAsync();
        return await last.Database.SqlQuery<string>($"SELECT statement AS \"Value\" FROM pg_prepared_statements").ToListAsync();
    }
}
