using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Money;

namespace ProgrammableFilm.Coordinator.Money;

/// <summary>One device price of the book; <see cref="InForce"/> when it is the one its SKU and scope bill at now.</summary>
public sealed record DevicePriceInfo(string Sku, string? Project, DateTime EffectiveFrom, decimal DollarsPerHour, double RatedWatts, bool InForce);

/// <summary>One carbon intensity of the book (pool <c>*</c>: every pool without its own).</summary>
public sealed record CarbonIntensityInfo(string Pool, string? Project, DateTime EffectiveFrom, double GramsPerKwh, bool InForce);

/// <summary>The price book's entries, past, present and scheduled, oldest first per SKU or pool.</summary>
public sealed record PriceBookView(DateTime At, IReadOnlyList<DevicePriceInfo> Devices, IReadOnlyList<CarbonIntensityInfo> Carbon);

/// <summary>What a project's attempts are billed at now, its overrides applied.</summary>
public sealed record ProjectRates(string Project, DateTime At, IReadOnlyList<DevicePriceInfo> Devices, IReadOnlyList<CarbonIntensityInfo> Carbon);

/// <summary>A new device price: from <see cref="EffectiveFrom"/> (now when null), farm-wide or for <see cref="Project"/>.</summary>
public sealed record NewDevicePrice(string Sku, string? Project, decimal DollarsPerHour, double RatedWatts, DateTime? EffectiveFrom);

/// <summary>A new carbon intensity for a pool (or <c>*</c>), farm-wide or for <see cref="Project"/>.</summary>
public sealed record NewCarbonIntensity(string Pool, string? Project, double GramsPerKwh, DateTime? EffectiveFrom);

/// <summary>
/// Reads and extends the price book. Entries are only ever added: a price change is a new entry from its effective
/// time, and every ledger row keeps the price it was billed at, so nothing already billed changes.
/// </summary>
public sealed class Prices(IDbContextFactory<FarmDbContext> contextFactory, PriceBookCache cache, TimeProvider time)
{
    /// <summary>The book's entries: the farm's, and the overrides of <paramref name="project"/> (every project's when null and <paramref name="allProjects"/>).</summary>
    public async Task<PriceBookView> ListAsync(string? project, bool allProjects, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var book = await cache.CurrentAsync(cancellationToken);
        bool Visible(string? owner) => owner is null || allProjects || string.Equals(owner, project, StringComparison.Ordinal);
        var devices = book.Devices.Where(d => Visible(d.Project)).ToList();
        var carbon = book.Carbon.Where(c => Visible(c.Project)).ToList();
        return new PriceBookView(
            now,
            [.. devices.Select(d => new DevicePriceInfo(d.Sku, d.Project, d.EffectiveFrom, d.DollarsPerHour, d.RatedWatts, IsLatest(devices, d, x => (x.Sku, x.Project), x => x.EffectiveFrom, now)))],
            [.. carbon.Select(c => new CarbonIntensityInfo(c.Pool, c.Project, c.EffectiveFrom, c.GramsPerKwh, IsLatest(carbon, c, x => (x.Pool, x.Project), x => x.EffectiveFrom, now)))]);
    }

    /// <summary>What the project is billed at now, per SKU and pool the book names.</summary>
    public async Task<ProjectRates> RatesAsync(string project, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var (devices, carbon) = (await cache.CurrentAsync(cancellationToken)).InForceFor(project, now);
        return new ProjectRates(
            project,
            now,
            [.. devices.Select(d => new DevicePriceInfo(d.Sku, d.Project, d.EffectiveFrom, d.DollarsPerHour, d.RatedWatts, true))],
            [.. carbon.Select(c => new CarbonIntensityInfo(c.Pool, c.Project, c.EffectiveFrom, c.GramsPerKwh, true))]);
    }

    /// <summary>Adds a device price; the errors name the request's fields, and nothing is written when there are any.</summary>
    public async Task<(DevicePriceInfo? Added, IReadOnlyList<FieldError> Errors)> AddDevicePriceAsync(NewDevicePrice price, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var errors = new List<FieldError>();
        if (!MoneyRules.IsName(price.Sku))
        {
            errors.Add(new FieldError("sku", "must be 1-63 lower-case letters, digits or '-'"));
        }

        if (price.Project is not null && !MoneyRules.IsName(price.Project))
        {
            errors.Add(new FieldError("project", "must be a project name (lower-case letters, digits, '-') or absent for the farm's price"));
        }

        MoneyRules.CheckDollars("dollarsPerHour", price.DollarsPerHour, MoneyRules.MaxDollarsPerHour, zeroAllowed: true, errors);
        MoneyRules.CheckNumber("ratedWatts", price.RatedWatts, 0, MoneyRules.MaxRatedWatts, minAllowed: true, errors);
        var from = CheckEffectiveFrom(price.EffectiveFrom, now, errors);
        var book = await cache.CurrentAsync(cancellationToken);
        if (price.Project is not null && MoneyRules.IsName(price.Sku) && !book.Knows(price.Sku))
        {
            errors.Add(new FieldError("sku", $"'{price.Sku}' has no farm price: a project may override only the farm's SKUs ({string.Join(", ", book.Devices.Where(d => d.Project is null).Select(d => d.Sku).Distinct())})"));
        }

        if (errors.Count > 0)
        {
            return (null, errors);
        }

        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        db.DevicePrices.Add(new DevicePriceRow { Sku = price.Sku, Project = price.Project ?? "", EffectiveFrom = from, DollarsPerHour = price.DollarsPerHour, RatedWatts = price.RatedWatts, CreatedAt = now });
        if (!await TrySaveAsync(db, cancellationToken))
        {
            return (null, [new FieldError("effectiveFrom", $"'{price.Sku}' already has a price from {from:O}{(price.Project is null ? "" : $" for {price.Project}")}")]);
        }

        cache.Forget();
        return (new DevicePriceInfo(price.Sku, price.Project, from, price.DollarsPerHour, price.RatedWatts, from <= now), []);
    }

    /// <summary>Adds a carbon intensity; the errors name the request's fields, and nothing is written when there are any.</summary>
    public async Task<(CarbonIntensityInfo? Added, IReadOnlyList<FieldError> Errors)> AddCarbonIntensityAsync(NewCarbonIntensity intensity, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var errors = new List<FieldError>();
        if (intensity.Pool != PriceBook.AnyPool && !MoneyRules.IsName(intensity.Pool))
        {
            errors.Add(new FieldError("pool", "must be a pool name (lower-case letters, digits, '-') or '*' for every pool"));
        }

        if (intensity.Project is not null && !MoneyRules.IsName(intensity.Project))
        {
            errors.Add(new FieldError("project", "must be a project name (lower-case letters, digits, '-') or absent for the farm's intensity"));
        }

        MoneyRules.CheckNumber("gramsPerKwh", intensity.GramsPerKwh, 0, MoneyRules.MaxGramsPerKwh, minAllowed: true, errors);
        var from = CheckEffectiveFrom(intensity.EffectiveFrom, now, errors);
        if (errors.Count > 0)
        {
            return (null, errors);
        }

        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        db.CarbonIntensities.Add(new CarbonIntensityRow { Pool = intensity.Pool, Project = intensity.Project ?? "", EffectiveFrom = from, GramsPerKwh = intensity.GramsPerKwh, CreatedAt = now });
        if (!await TrySaveAsync(db, cancellationToken))
        {
            return (null, [new FieldError("effectiveFrom", $"pool '{intensity.Pool}' already has an intensity from {from:O}")]);
        }

        cache.Forget();
        return (new CarbonIntensityInfo(intensity.Pool, intensity.Project, from, intensity.GramsPerKwh, from <= now), []);
    }

    /// <summary>
    /// An entry may start now or later, not in the past (a few minutes of clock skew aside): rows already billed keep
    /// their prices anyway, and a backdated entry would make the book disagree with what they were billed at.
    /// </summary>
    private static DateTime CheckEffectiveFrom(DateTime? requested, DateTime now, List<FieldError> errors)
    {
        if (requested is not { } from)
        {
            return now;
        }

        var utc = from.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(from, DateTimeKind.Utc) : from.ToUniversalTime();
        if (utc < now - MoneyRules.MaxBackdating)
        {
            errors.Add(new FieldError("effectiveFrom", $"must not be in the past (it is {now:O}): the book must say what billed rows were charged"));
        }
        else if (utc > now.AddYears(10))
        {
            errors.Add(new FieldError("effectiveFrom", "must be within ten years"));
        }

        return utc;
    }

    private static async Task<bool> TrySaveAsync(FarmDbContext db, CancellationToken cancellationToken)
    {
        try
        {
            await db.SaveChangesAsync(cancellationToken);
            return true;
        }
        catch (DbUpdateException)
        {
            return false;
        }
    }

    private static bool IsLatest<T, TKey>(IReadOnlyList<T> entries, T entry, Func<T, TKey> key, Func<T, DateTime> start, DateTime now) =>
        start(entry) <= now && !entries.Any(other => EqualityComparer<TKey>.Default.Equals(key(other), key(entry)) && start(other) > start(entry) && start(other) <= now);
}
