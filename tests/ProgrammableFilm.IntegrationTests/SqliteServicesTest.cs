using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Data;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A test over farm services on a fresh embedded database (SQLite, made by its real migrations) in a folder of its
/// own; <see cref="AddServices"/> adds what the test reads and writes through.
/// </summary>
public abstract class SqliteServicesTest(string folderPrefix) : IAsyncLifetime
{
    private readonly string _folder = TestEnvironment.CreateTemporaryFolder(folderPrefix);

    protected ServiceProvider Services { get; private set; } = null!;

    protected abstract void AddServices(IServiceCollection services);

    public async Task InitializeAsync()
    {
        var services = new ServiceCollection()
            .AddFarmData(DatabaseOptions.Sqlite(Path.Combine(_folder, "pfilm.db")))
            .AddSingleton(TimeProvider.System);
        AddServices(services);
        Services = services.BuildServiceProvider();
        await Services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await Services.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }
}
