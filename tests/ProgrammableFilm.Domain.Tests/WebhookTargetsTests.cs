using System.Net;
using System.Text;
using ProgrammableFilm.Domain.Webhooks;

namespace ProgrammableFilm.Domain.Tests;

public class WebhookTargetsTests
{
    [Theory]
    [InlineData("http://169.254.169.254/latest/meta-data/", "denied network 169.254.0.0/16")]
    [InlineData("http://[fe80::1]/hook", "denied network fe80::/10")]
    [InlineData("http://[::ffff:169.254.169.254]/hook", "denied network 169.254.0.0/16")]
    [InlineData("http://100.100.100.200/hook", "denied network")]
    [InlineData("http://metadata.google.internal/computeMetadata/v1/", "denied host")]
    [InlineData("http://127.0.0.1:8080/hook", "loopback")]
    [InlineData("http://[::1]/hook", "loopback")]
    [InlineData("ftp://example.com/hook", "http or https")]
    [InlineData("/relative/hook", "http or https")]
    [InlineData("https://user:secret@example.com/hook", "credentials")]
    [InlineData("", "required")]
    public void Denied_and_malformed_urls_are_refused_with_the_reason(string url, string reason)
    {
        var refusal = new WebhookTargets().UrlRefusal(url, out var parsed);

        Assert.NotNull(refusal);
        Assert.Contains(reason, refusal, StringComparison.Ordinal);
        Assert.Null(parsed);
    }

    [Fact]
    public void Public_addresses_pass_loopback_only_when_allowed_and_an_allow_list_narrows()
    {
        var defaults = new WebhookTargets();
        Assert.Null(defaults.UrlRefusal("https://203.0.113.10/hook", out _));
        Assert.Null(defaults.Refusal(IPAddress.Parse("10.1.2.3")));
        Assert.NotNull(defaults.Refusal(IPAddress.Loopback));

        var local = new WebhookTargets { AllowLoopback = true };
        Assert.Null(local.Refusal(IPAddress.Loopback));
        Assert.Null(local.Refusal(IPAddress.IPv6Loopback));
        Assert.NotNull(local.Refusal(IPAddress.Parse("169.254.169.254")));

        var narrow = new WebhookTargets { AllowedNetworks = [IPNetwork.Parse("192.0.2.0/24")] };
        Assert.Null(narrow.Refusal(IPAddress.Parse("192.0.2.7")));
        Assert.Contains("none of the allowed", narrow.Refusal(IPAddress.Parse("203.0.113.10")), StringComparison.Ordinal);

        var (allowed, refusal) = defaults.Filter([IPAddress.Parse("169.254.169.254"), IPAddress.Parse("203.0.113.10")]);
        Assert.Equal([IPAddress.Parse("203.0.113.10")], allowed);
        Assert.Null(refusal);
        Assert.Contains("169.254.0.0/16", defaults.Filter([IPAddress.Parse("169.254.169.254")]).Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void A_signature_verifies_over_timestamp_and_body_and_fails_when_either_changes()
    {
        var body = Encoding.UTF8.GetBytes("{\"event\":\"job.succeeded\"}");
        var now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var header = WebhookSignature.Sign("whsec_test", now.ToUnixTimeSeconds(), body);

        Assert.Matches("^t=1800000000,v1=[0-9a-f]{64}$", header);
        Assert.True(WebhookSignature.Verify("whsec_test", header, body, now.AddSeconds(30), TimeSpan.FromMinutes(5)));
        Assert.False(WebhookSignature.Verify("whsec_other", header, body, now, TimeSpan.FromMinutes(5)));
        Assert.False(WebhookSignature.Verify("whsec_test", header, Encoding.UTF8.GetBytes("{\"event\":\"job.failed\"}"), now, TimeSpan.FromMinutes(5)));
        Assert.False(WebhookSignature.Verify("whsec_test", header.Replace("t=1800000000", "t=1800000001", StringComparison.Ordinal), body, now, TimeSpan.FromMinutes(5)));
        Assert.False(WebhookSignature.Verify("whsec_test", header, body, now.AddMinutes(10), TimeSpan.FromMinutes(5)));
    }
}
