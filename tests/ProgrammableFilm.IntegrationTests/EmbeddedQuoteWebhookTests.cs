using Hangfire;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Coordinator.Webhooks;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>Quotes and webhooks on the embedded database (SQLite): the same services, the other migration.</summary>
public class EmbeddedQuoteWebhookTests
{
    [Fact]
    public async Task Pfilm_render_stores_each_jobs_quote_and_settles_it_against_the_ledger()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-embedded-quote");
        var spec = Path.Combine(folder, "two.yaml");
        await File.WriteAllTextAsync(spec, """
            project: it-local-quotes
            shots:
              - {name: a, prompt: a red car racing left to right at dusk, duration: 0.25, fps: 8, width: 64, height: 64, keyframeInterval: 1}
              - {name: b, prompt: a blue boat in the snow, duration: 0.25, fps: 8, width: 64, height: 64, keyframeInterval: 1}
            """);
        var output = Path.Combine(folder, "renders");
        try
        {
            var (exitCode, stdout, stderr) = await TestEnvironment.RunAsync("bash", ["./pfilm", "render", spec, "--out", output], timeout: TimeSpan.FromMinutes(5));
            Assert.True(exitCode == 0, $"{stdout}\n{stderr}");

            await using var db = new FarmDbContext(new DbContextOptionsBuilder<FarmDbContext>().UseSqlite($"Data Source={Path.Combine(output, "pfilm.db")}").Options);
            var quote = await db.JobQuotes.AsNoTracking().SingleAsync();
            var billed = await db.Usage.AsNoTracking().ToListAsync();
            var takes = await db.ShotQuotes.AsNoTracking().ToListAsync();
            Assert.Equal("cpu", quote.DeviceSku);
            Assert.True(quote.DeviceSeconds > 0 && quote.Cost > 0);
            Assert.Equal(billed.Sum(u => u.Cost), quote.ActualCost);
            Assert.NotNull(quote.ErrorFraction);
            Assert.NotNull(quote.FinishedAt);
            Assert.Equal(2, takes.Count);
            Assert.All(takes, t => Assert.Equal(("procedural 64x64", "prior"), (t.Kind, t.Basis)));
            Assert.All(takes, t => Assert.Equal(billed.Where(u => u.ShotId == t.ShotId).Sum(u => u.Cost), t.ActualCost));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task On_sqlite_a_delivery_is_written_once_retried_when_due_and_logged()
    {
        var folder = TestEnvironment.CreateTemporaryFolder("pfilm-embedded-hooks");
        await using var receiver = new WebhookReceiver();
        receiver.Answer("hook", 500);
        var options = new CoordinatorOptions { Webhooks = new WebhookSettings { Targets = new() { AllowLoopback = true }, RetryBackoff = TimeSpan.FromSeconds(1) } };
        var services = new ServiceCollection().AddLogging()
            .AddCoordinator(DatabaseOptions.Sqlite(Path.Combine(folder, "pfilm.db")), options, new ShotStorage(folder))
            .AddFarmMaintenance(hangfire => hangfire.UseInMemoryStorage())
            .BuildServiceProvider();
        try
        {
            await services.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
            var (hook, errors) = await services.GetRequiredService<WebhookSubscriptions>().CreateAsync("it-local", receiver.Url("hook"), ["budget.hard"], null, null, CancellationToken.None);
            Assert.Null(errors);
            var outbox = services.GetRequiredService<WebhookOutbox>();
            var contexts = services.GetRequiredService<IDbContextFactory<FarmDbContext>>();
            for (var i = 0; i < 2; i++)
            {
                await using var db = await contexts.CreateDbContextAsync();
                await using var transaction = await db.Database.BeginTransactionAsync();
                await outbox.EnqueueAsync(db, "it-local", "budget.hard", new { limitUsd = 1m }, "budget.hard:it-local:1", CancellationToken.None);
                await transaction.CommitAsync();
            }

            Guid delivery;
            await using (var db = await contexts.CreateDbContextAsync())
            {
                delivery = (await db.WebhookDeliveries.SingleAsync()).Id;
            }

            // No Hangfire server runs here: the test is the worker. A run started just before the retry is due (Hangfire
            // keeps schedules to the second) waits for that moment and sends it; a run after the success sends nothing.
            var sender = services.GetRequiredService<WebhookSender>();
            await sender.DeliverAsync(delivery, CancellationToken.None);
            Assert.Single(receiver.At("hook"));
            await sender.DeliverAsync(delivery, CancellationToken.None);
            await sender.DeliverAsync(delivery, CancellationToken.None);

            var log = Assert.Single((await services.GetRequiredService<WebhookSubscriptions>().DeliveriesAsync("it-local", hook!.Id, 10, CancellationToken.None))!);
            Assert.Equal(("succeeded", 2), (log.State, log.Attempts));
            Assert.Equal([500, 200], log.Log.Select(a => a.StatusCode ?? 0));
            // The backoff counts from the failed attempt's end, which is no earlier than its start plus its duration (the
            // test's own clock would start later: after the failure's commit and the retry's scheduling).
            var (failed, retried) = (log.Log.Single(a => a.Attempt == 1), log.Log.Single(a => a.Attempt == 2));
            var gap = retried.At - failed.At.AddMilliseconds(failed.DurationMs);
            Assert.True(gap >= TimeSpan.FromSeconds(0.99), $"the retry was sent {gap} after the failure, before its 1-s backoff");
            Assert.Equal(2, receiver.At("hook").Count);
            Assert.All(receiver.At("hook"), r => Assert.True(WebhookReceiver.Verify(hook.Secret, r)));
            Assert.Equal(0, await sender.SweepAsync(CancellationToken.None));
            Assert.NotNull(services.GetRequiredService<IBackgroundJobClient>());
        }
        finally
        {
            await services.DisposeAsync();
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }
}
