using System.Net;
using System.Net.Sockets;

namespace ProgrammableFilm.Domain.Webhooks;

/// <summary>The events a subscription may ask for.</summary>
public static class WebhookEvents
{
    public const string JobSucceeded = "job.succeeded";
    public const string JobFailed = "job.failed";
    public const string ShotSucceeded = "shot.succeeded";
    public const string BudgetSoft = "budget.soft";
    public const string BudgetHard = "budget.hard";

    public static IReadOnlyList<string> All { get; } = [JobSucceeded, JobFailed, ShotSucceeded, BudgetSoft, BudgetHard];
}

/// <summary>
/// Where webhooks may be sent. A farm's coordinator sits inside a cluster: a subscription must not make it POST to
/// the cloud's metadata service (credentials), to link-local addresses or, unless the operator says so, to itself.
/// An address is allowed when it is in no denied network, is not loopback (unless <see cref="AllowLoopback"/>) and,
/// when <see cref="AllowedNetworks"/> is not empty, is in one of them. Checked when a subscription is made (every
/// address its host resolves to) and again when each delivery connects (DNS may answer differently by then).
/// </summary>
public sealed record WebhookTargets
{
    /// <summary>Link-local (where the clouds' metadata services live) and the metadata addresses outside it.</summary>
    public static IReadOnlyList<IPNetwork> DefaultDenied { get; } =
    [
        IPNetwork.Parse("169.254.0.0/16"),
        IPNetwork.Parse("fe80::/10"),
        IPNetwork.Parse("0.0.0.0/8"),
        IPNetwork.Parse("100.100.100.200/32"),
        IPNetwork.Parse("168.63.129.16/32"),
        IPNetwork.Parse("fd00:ec2::254/128"),
        IPNetwork.Parse("::/128"),
    ];

    /// <summary>Host names of metadata services, refused whatever they resolve to.</summary>
    public static IReadOnlyList<string> DefaultDeniedHosts { get; } = ["metadata.google.internal", "metadata", "metadata.azure.internal", "instance-data", "instance-data.ec2.internal"];

    public IReadOnlyList<IPNetwork> DeniedNetworks { get; init; } = DefaultDenied;

    public IReadOnlyList<string> DeniedHosts { get; init; } = DefaultDeniedHosts;

    /// <summary>Empty: any address not denied.</summary>
    public IReadOnlyList<IPNetwork> AllowedNetworks { get; init; } = [];

    public bool AllowLoopback { get; init; }

    /// <summary>Null when the address may be sent to; else why not.</summary>
    public string? Refusal(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.IsLoopback(address) && !AllowLoopback)
        {
            return $"{address} is a loopback address";
        }

        if (DeniedNetworks.Where(n => n.Contains(address)).Select(n => $"{address} is in the denied network {n}").FirstOrDefault() is { } denied)
        {
            return denied;
        }

        if (AllowedNetworks.Count > 0 && !AllowedNetworks.Any(n => n.Contains(address)) && !(IPAddress.IsLoopback(address) && AllowLoopback))
        {
            return $"{address} is in none of the allowed networks";
        }

        return null;
    }

    /// <summary>
    /// The URL's form: absolute http(s), a host, no credentials, at most 2,000 characters, not a denied host name.
    /// Null when acceptable (its addresses are checked separately); else why not.
    /// </summary>
    public string? UrlRefusal(string? url, out Uri? parsed)
    {
        parsed = null;
        if (string.IsNullOrWhiteSpace(url) || url.Length > 2000)
        {
            return "is required: an absolute http or https URL of at most 2000 characters";
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || string.IsNullOrEmpty(uri.Host))
        {
            return "must be an absolute http or https URL";
        }

        if (uri.UserInfo.Length > 0)
        {
            return "must not hold credentials (they would be stored and logged in plain text; verify the signature instead)";
        }

        if (!string.IsNullOrEmpty(uri.Fragment))
        {
            return "must not have a fragment";
        }

        var host = uri.IdnHost.TrimEnd('.');
        if (DeniedHosts.Any(h => string.Equals(h, host, StringComparison.OrdinalIgnoreCase)))
        {
            return $"{host} is a denied host (a cloud metadata service)";
        }

        if (IPAddress.TryParse(host.Trim('[', ']'), out var literal) && Refusal(literal) is { } refusal)
        {
            return $"is not allowed: {refusal}";
        }

        parsed = uri;
        return null;
    }

    /// <summary>The addresses of <paramref name="addresses"/> this policy allows, in order; the first refusal when none is.</summary>
    public (IReadOnlyList<IPAddress> Allowed, string? Refusal) Filter(IEnumerable<IPAddress> addresses)
    {
        var allowed = new List<IPAddress>();
        string? first = null;
        foreach (var address in addresses.Where(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            if (Refusal(address) is { } refusal)
            {
                first ??= refusal;
            }
            else
            {
                allowed.Add(address);
            }
        }

        return (allowed, allowed.Count == 0 ? first ?? "the host has no address" : null);
    }
}
