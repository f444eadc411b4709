using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ProgrammableFilm.Data;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Coordinator;

public static class CoordinatorExtensions
{
    /// <summary>The coordinator: job submission, the dispatcher, event handling and reports, over the farm database.</summary>
    public static IServiceCollection AddCoordinator(this IServiceCollection services, DatabaseOptions database, CoordinatorOptions options, ShotStorage storage)
    {
        services.AddFarmData(database);
        services.AddMetrics();
        services.AddSingleton<FarmMetrics>();
        services.AddSingleton<FarmMetrics.CommitInterceptor>();
        services.AddSingleton<Webhooks.WebhookOutbox>();
        services.AddSingleton<Webhooks.WebhookOutbox.CommitInterceptor>();
        services.ConfigureDbContext<FarmDbContext>((provider, context) => context.AddInterceptors(
            provider.GetRequiredService<FarmMetrics.CommitInterceptor>(),
            provider.GetRequiredService<Webhooks.WebhookOutbox.CommitInterceptor>()));
        services.AddSingleton(options);
        services.AddSingleton(storage);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<DispatchSignal>();
        services.AddSingleton<SuccessGroupCommit>();
        services.AddSingleton<JobSubmission>();
        services.AddSingleton<JobReports>();
        services.AddSingleton<ShotFinisher>();
        services.AddSingleton<Money.PriceBookCache>();
        services.AddSingleton<Money.Prices>();
        services.AddHostedService<Money.PriceBookWarmUp>();
        services.AddSingleton<Money.Budgets>();
        services.AddSingleton<Money.SpendReports>();
        services.AddSingleton<Money.IBudgetAlertSink, Money.LoggingBudgetAlertSink>();
        services.AddSingleton<Money.IBudgetAlertSink, Webhooks.WebhookBudgetAlertSink>();
        services.AddSingleton<Money.BudgetAlertRelay>();
        services.AddSingleton<UsageLedger>();
        services.AddSingleton<TaskEvents>();
        services.AddSingleton<JobControl>();
        services.AddSingleton<Takes.TakeReviews>();
        services.AddSingleton<Plates.PlateStore>();
        services.AddSingleton<ProjectShares>();
        services.AddSingleton<Quotes.QuoteBook>();
        services.AddSingleton<Webhooks.WebhookSubscriptions>();
        services.AddSingleton<RenderQueueDepths>();
        services.AddSingleton<Dispatcher>();
        services.AddSingleton<Access.ApiKeys>();
        services.AddSingleton<Access.AuditLog>();
        services.AddSingleton<Access.ResourceOwners>();
        services.AddHostedService(provider => provider.GetRequiredService<Dispatcher>());
        services.AddSingleton<TaskStatistics>();
        services.AddHostedService(provider => provider.GetRequiredService<TaskStatistics>());
        services.AddSingleton<BackgroundPlanner>();
        services.AddHostedService(provider => provider.GetRequiredService<BackgroundPlanner>());
        services.AddHostedService<PlanningWarmUp>();
        return services;
    }

    /// <summary>Registers the coordinator's consumers on the bus the host configures.</summary>
    public static void AddCoordinatorConsumers(this IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<ClaimAttemptConsumer, ClaimBatchDefinition>();
        bus.AddConsumer<WorkerHeartbeatConsumer, RequestRetryDefinition<WorkerHeartbeatConsumer>>();
        bus.AddConsumer<TaskSucceededConsumer, SuccessGroupDefinition>();
        bus.AddConsumer<TaskFailedConsumer, EventRetryDefinition<TaskFailedConsumer>>();
        bus.AddConsumer<TaskProgressedConsumer, EventRetryDefinition<TaskProgressedConsumer>>();
    }
}
