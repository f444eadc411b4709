using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator.Access;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>Keys and the audit log on the embedded database (SQLite): the same services, the other migration.</summary>
public sealed class AccessOnSqliteTests() : SqliteServicesTest("pfilm-access-sqlite")
{
    protected override void AddServices(IServiceCollection services) => services.AddSingleton<ApiKeys>().AddSingleton<AuditLog>();

    [Fact]
    public async Task Keys_authenticate_expire_and_revoke_and_the_audit_log_refuses_changes()
    {
        var keys = Services.GetRequiredService<ApiKeys>();
        var audit = Services.GetRequiredService<AuditLog>();
        var viewer = await keys.CreateAsync("v", "alpha", ApiKeyRole.Viewer, DateTime.UtcNow.AddHours(1), null, CancellationToken.None);
        var expired = await keys.CreateAsync("e", "alpha", ApiKeyRole.Viewer, DateTime.UtcNow.AddSeconds(-1), null, CancellationToken.None);

        var (caller, _) = await keys.AuthenticateAsync(viewer.Key, CancellationToken.None);
        Assert.Equal(("alpha", ApiKeyRole.Viewer), (caller!.Project, caller.Role));
        Assert.Equal(KeyRejection.Expired, (await keys.AuthenticateAsync(expired.Key, CancellationToken.None)).Rejection);
        Assert.False(await keys.AnyUsableAdminKeyAsync(CancellationToken.None));
        Assert.NotNull(await keys.RevokeAsync(viewer.Info.Id, "alpha", CancellationToken.None));
        Assert.Equal(KeyRejection.Revoked, (await keys.AuthenticateAsync(viewer.Key, CancellationToken.None)).Rejection);
        Assert.Null(await keys.RevokeAsync(viewer.Info.Id, "beta", CancellationToken.None));

        await audit.RecordAsync(caller, "alpha", "job.submit", "j1", "ok");
        await audit.RecordAsync(null, "beta", "job.submit", "j2", "ok");
        var page = await audit.ListAsync("alpha", 10, null, CancellationToken.None);
        Assert.Equal(("job.submit", "j1", viewer.Info.Prefix), (page.Entries.Single().Action, page.Entries.Single().Target, page.Entries.Single().KeyPrefix));
        await using var db = Services.GetRequiredService<IDbContextFactory<FarmDbContext>>().CreateDbContext();
        var error = await Assert.ThrowsAnyAsync<Exception>(() => db.Database.ExecuteSqlRawAsync("DELETE FROM audit_log"));
        Assert.Contains("append-only", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_revoked_by_another_api_process_is_refused_within_a_second_and_one_that_expires_at_once()
    {
        // Two API processes of one farm: each has its own ApiKeys over the same database.
        var here = Services.GetRequiredService<ApiKeys>();
        var there = new ApiKeys(Services.GetRequiredService<IDbContextFactory<FarmDbContext>>(), TimeProvider.System);
        var key = await here.CreateAsync("ci", "alpha", ApiKeyRole.Submitter, null, null, CancellationToken.None);
        Assert.Equal(KeyRejection.None, (await here.AuthenticateAsync(key.Key, CancellationToken.None)).Rejection);

        Assert.NotNull(await there.RevokeAsync(key.Info.Id, "alpha", CancellationToken.None));
        Assert.Equal(KeyRejection.Revoked, (await there.AuthenticateAsync(key.Key, CancellationToken.None)).Rejection);
        await Task.Delay(ApiKeys.RecentlyCheckedFor + TimeSpan.FromMilliseconds(50));
        Assert.Equal(KeyRejection.Revoked, (await here.AuthenticateAsync(key.Key, CancellationToken.None)).Rejection);

        var shortLived = await here.CreateAsync("short", "alpha", ApiKeyRole.Viewer, DateTime.UtcNow.AddMilliseconds(400), null, CancellationToken.None);
        Assert.Equal(KeyRejection.None, (await here.AuthenticateAsync(shortLived.Key, CancellationToken.None)).Rejection);
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        Assert.Equal(KeyRejection.Expired, (await here.AuthenticateAsync(shortLived.Key, CancellationToken.None)).Rejection);
    }
}
