using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Access;

namespace ProgrammableFilm.Coordinator.Access;

/// <summary>A key as lists show it: never the key or its hash.</summary>
public sealed record ApiKeyInfo(Guid Id, string Name, string Prefix, string? Project, string Role, DateTime CreatedAt, DateTime? ExpiresAt, DateTime? RevokedAt);

/// <summary>A new key: <see cref="Key"/> is shown this once and stored nowhere.</summary>
public sealed record CreatedApiKey(ApiKeyInfo Info, string Key);

/// <summary>Why a presented key does not authenticate.</summary>
public enum KeyRejection
{
    None,
    Malformed,
    Unknown,
    Expired,
    Revoked,
}

/// <summary>
/// Makes, checks, lists and revokes API keys. A key reads <c>pf_{prefix}_{secret}</c>: 8 hex characters that name it
/// in lists and logs, then 32 random bytes (base64url). The database holds the SHA-256 of the whole key.
/// </summary>
public sealed class ApiKeys(IDbContextFactory<FarmDbContext> contextFactory, TimeProvider time)
{
    /// <summary>Longer than any key this class makes: a longer header is rejected before it is hashed.</summary>
    public const int MaxKeyLength = 64;

    /// <summary>
    /// How long a key that authenticated is believed without its row: under fifty polling clients the row's lookup was a
    /// quarter of the API's CPU. A revocation drops the key here at once; another API process of the same farm honours
    /// it within this time. Expiry is checked on every request.
    /// </summary>
    public static readonly TimeSpan RecentlyCheckedFor = TimeSpan.FromSeconds(1);

    private const int MaxRecentlyChecked = 10_000;

    private readonly ConcurrentDictionary<string, CheckedKey> _recentlyChecked = new(StringComparer.Ordinal);

    private sealed record CheckedKey(Caller Caller, DateTime? ExpiresAt, long CheckedAt);

    public async Task<CreatedApiKey> CreateAsync(string name, string? project, ApiKeyRole role, DateTime? expiresAt, Guid? createdBy, CancellationToken cancellationToken)
    {
        if ((role == ApiKeyRole.Admin) != (project is null))
        {
            throw new ArgumentException("an admin key belongs to no project; every other key to one", nameof(project));
        }

        var prefix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var plaintext = $"pf_{prefix}_{secret}";
        var key = new ApiKey
        {
            Id = Guid.CreateVersion7(),
            Name = name,
            Prefix = prefix,
            Hash = Hash(plaintext),
            Project = project,
            Role = role,
            CreatedAt = time.GetUtcNow().UtcDateTime,
            CreatedBy = createdBy,
            ExpiresAt = expiresAt,
        };
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(cancellationToken);
        return new CreatedApiKey(Info(key), plaintext);
    }

    /// <summary>The caller a presented key stands for, or why it stands for nobody.</summary>
    public async Task<(Caller? Caller, KeyRejection Rejection)> AuthenticateAsync(string presented, CancellationToken cancellationToken)
    {
        if (presented.Length > MaxKeyLength || !presented.StartsWith("pf_", StringComparison.Ordinal))
        {
            return (null, KeyRejection.Malformed);
        }

        var hash = Hash(presented);
        if (_recentlyChecked.TryGetValue(hash, out var recent) && time.GetElapsedTime(recent.CheckedAt) < RecentlyCheckedFor)
        {
            return recent.ExpiresAt is { } expires && expires <= time.GetUtcNow().UtcDateTime ? (null, KeyRejection.Expired) : (recent.Caller, KeyRejection.None);
        }

        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var key = await db.ApiKeys.AsNoTracking().SingleOrDefaultAsync(k => k.Hash == hash, cancellationToken);
        if (key is null)
        {
            return (null, KeyRejection.Unknown);
        }

        if (key.RevokedAt is not null)
        {
            return (null, KeyRejection.Revoked);
        }

        if (key.ExpiresAt is { } expiresAt && expiresAt <= time.GetUtcNow().UtcDateTime)
        {
            return (null, KeyRejection.Expired);
        }

        var caller = new Caller(key.Id, key.Prefix, key.Project, key.Role);
        if (_recentlyChecked.Count >= MaxRecentlyChecked)
        {
            _recentlyChecked.Clear();
        }

        _recentlyChecked[hash] = new CheckedKey(caller, key.ExpiresAt, time.GetTimestamp());
        return (caller, KeyRejection.None);
    }

    /// <summary>A project's keys, or with <paramref name="project"/> null every key of the farm; newest first.</summary>
    public async Task<IReadOnlyList<ApiKeyInfo>> ListAsync(string? project, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var keys = db.ApiKeys.AsNoTracking();
        if (project is not null)
        {
            keys = keys.Where(k => k.Project == project);
        }

        return [.. (await keys.ToListAsync(cancellationToken)).OrderByDescending(k => k.CreatedAt).Select(Info)];
    }

    /// <summary>Revokes a key (of <paramref name="project"/> when given); null when there is no such key. Revoking twice keeps the first time.</summary>
    public async Task<ApiKeyInfo?> RevokeAsync(Guid keyId, string? project, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        var keys = db.ApiKeys.Where(k => k.Id == keyId && (project == null || k.Project == project));
        // Conditional, so that two revocations racing keep the first time.
        await keys.Where(k => k.RevokedAt == null).ExecuteUpdateAsync(k => k.SetProperty(x => x.RevokedAt, now), cancellationToken);
        foreach (var (hash, recent) in _recentlyChecked)
        {
            if (recent.Caller.KeyId == keyId)
            {
                _recentlyChecked.TryRemove(hash, out _);
            }
        }

        return await keys.AsNoTracking().SingleOrDefaultAsync(cancellationToken) is { } key ? Info(key) : null;
    }

    /// <summary>Whether any admin key could still be used: the farm says how to make the first one when none can.</summary>
    public async Task<bool> AnyUsableAdminKeyAsync(CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var now = time.GetUtcNow().UtcDateTime;
        return await db.ApiKeys.AnyAsync(k => k.Role == ApiKeyRole.Admin && k.RevokedAt == null && (k.ExpiresAt == null || k.ExpiresAt > now), cancellationToken);
    }

    private static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    private static ApiKeyInfo Info(ApiKey key) =>
        new(key.Id, key.Name, key.Prefix, key.Project, key.Role.ToString().ToLowerInvariant(), key.CreatedAt, key.ExpiresAt, key.RevokedAt);
}
