using System.Net;
using Microsoft.Extensions.Configuration;
using ProgrammableFilm.Domain.Webhooks;

namespace ProgrammableFilm.Coordinator.Webhooks;

/// <summary>Webhook delivery settings (section <c>Webhooks</c>; names in docs/configuration.md).</summary>
public sealed record WebhookSettings
{
    public WebhookTargets Targets { get; init; } = new();

    /// <summary>How long one POST may take before it counts as failed.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Attempts per delivery, the first included; after the last failure the delivery is <c>Failed</c>.</summary>
    public int MaxAttempts { get; init; } = 8;

    /// <summary>Wait after the first failure; doubled after each further one (10 s, 20 s, 40 s … by default).</summary>
    public TimeSpan RetryBackoff { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan RetryBackoffMax { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Hangfire workers of the <c>webhooks</c> queue: a slow receiver holds one of these, never a sweep's.</summary>
    public int Workers { get; init; } = 2;

    /// <summary>The wait before attempt <paramref name="nextAttempt"/> (2 or more).</summary>
    public TimeSpan BackoffBefore(int nextAttempt)
    {
        var doubled = RetryBackoff.TotalSeconds * Math.Pow(2, Math.Min(30, nextAttempt - 2));
        return TimeSpan.FromSeconds(Math.Min(doubled, RetryBackoffMax.TotalSeconds));
    }

    public static WebhookSettings FromConfiguration(IConfiguration configuration)
    {
        var section = configuration.GetSection("Webhooks");
        var defaults = new WebhookSettings();
        IReadOnlyList<IPNetwork> Networks(string key, IReadOnlyList<IPNetwork> fallback)
        {
            var values = section.GetSection(key).Get<string[]>();
            return values is null ? fallback : [.. values.Select(v => IPNetwork.Parse(v.Trim()))];
        }

        // The denied networks and hosts given are added to the defaults: allowing a metadata address takes a
        // deliberate AllowedNetworks entry and an emptied default list, never a typo.
        var denied = section["ReplaceDefaultDenied"] is "true" or "True" ? Networks("DeniedNetworks", []) : [.. WebhookTargets.DefaultDenied, .. Networks("DeniedNetworks", [])];
        return defaults with
        {
            Targets = new WebhookTargets
            {
                AllowLoopback = section.GetValue("AllowLoopback", false),
                AllowedNetworks = Networks("AllowedNetworks", []),
                DeniedNetworks = denied,
                DeniedHosts = [.. WebhookTargets.DefaultDeniedHosts, .. section.GetSection("DeniedHosts").Get<string[]>() ?? []],
            },
            Timeout = section.GetValue("Timeout", defaults.Timeout),
            MaxAttempts = Math.Max(1, section.GetValue("MaxAttempts", defaults.MaxAttempts)),
            RetryBackoff = section.GetValue("RetryBackoff", defaults.RetryBackoff),
            RetryBackoffMax = section.GetValue("RetryBackoffMax", defaults.RetryBackoffMax),
            Workers = Math.Max(1, section.GetValue("Workers", defaults.Workers)),
        };
    }
}
