using MassTransit;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Coordinator;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.IntegrationTests;

/// <summary>
/// A coordinator stopped (a rolling update, a scale-down) while its dispatcher is passing: what the pass committed
/// must reach the broker, not wait for the republish sweep of a coordinator that may never come back.
/// </summary>
public sealed class DispatcherStopTests
{
    /// <summary>481 one-frame tasks, all Ready at once: sixteen bundles sent by the pass the submission wakes.</summary>
    private const string Spec = """
        project: it-stop
        shots:
          - {name: a, prompt: a red cube, duration: 20, fps: 24, width: 64, height: 64, keyframeInterval: 1}
        """;

    [Fact]
    public async Task A_coordinator_stopped_while_its_dispatcher_sends_leaves_every_queued_attempt_in_its_queue()
    {
        var connectionString = await TestEnvironment.CreateDatabaseAsync("pfilm_stop");
        var data = new ServiceCollection().AddFarmData(new DatabaseOptions(DatabaseProvider.Postgres, connectionString)).BuildServiceProvider();
        await using (data)
        {
            await data.GetRequiredService<DatabaseMigrator>().MigrateAsync(CancellationToken.None);
        }

        var storage = TestEnvironment.CreateTemporaryFolder("pfilm-stop");
        var prefix = $"st{Guid.NewGuid().ToString("N")[..8]}-";
        var spec = JobSpecReader.ReadYaml(Spec).Spec!;
        try
        {
            // The broker made slow (each send waits in the bus's own pipeline) so that the stop comes mid-pass.
            var sending = new SlowSends(TimeSpan.FromMilliseconds(300));
            await using (var coordinator = Coordinator(connectionString, storage, prefix))
            {
                coordinator.Services.GetRequiredService<IBus>().ConnectSendObserver(sending);
                await coordinator.Services.GetRequiredService<JobSubmission>().SubmitAsync(spec, CancellationToken.None);
                await sending.First.Task.WaitAsync(TimeSpan.FromSeconds(30));
            }

            await using var db = TestEnvironment.CreateDbContext(connectionString);
            var committed = await db.Attempts.Where(a => a.State == AttemptState.Queued).Select(a => a.BundleSize).ToListAsync();
            var messages = (int)Math.Round(committed.Sum(size => 1.0 / size));
            var queued = (await BrokerQueues.ListAsync()).GetValueOrDefault($"{prefix}render-cpu");

            Assert.True(committed.Count > 0);
            Assert.Equal(messages, queued?.Ready ?? 0);
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    /// <summary>Holds every send of render work for a while, and tells when the first one began.</summary>
    private sealed class SlowSends(TimeSpan delay) : ISendObserver
    {
        public TaskCompletionSource First { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task PreSend<T>(SendContext<T> context)
            where T : class
        {
            if (context.Message is Contracts.RenderBundle)
            {
                First.TrySetResult();
                await Task.Delay(delay);
            }
        }

        public Task PostSend<T>(SendContext<T> context)
            where T : class => Task.CompletedTask;

        public Task SendFault<T>(SendContext<T> context, Exception exception)
            where T : class => Task.CompletedTask;
    }

    private static WebApplicationFactory<Program> Coordinator(string connectionString, string storage, string prefix)
    {
        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            builder.UseSetting("Database:Provider", "postgres");
            builder.UseSetting("Database:ConnectionString", connectionString);
            builder.UseSetting("RabbitMq:Uri", TestEnvironment.RabbitMq);
            builder.UseSetting("RabbitMq:Prefix", prefix);
            builder.UseSetting("Storage:Root", storage);

            // Room for all of the job's tasks: the pass the submission wakes sends every one of them.
            builder.UseSetting("Coordinator:MaxQueuedPerPool", "1000");
        });
        _ = factory.Server;
        return factory;
    }
}
