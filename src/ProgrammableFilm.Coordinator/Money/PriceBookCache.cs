using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Domain.Money;

namespace ProgrammableFilm.Coordinator.Money;

/// <summary>
/// The price book as this coordinator bills by it: read from the database at most every
/// <see cref="CoordinatorOptions.PriceBookRefresh"/>, so appending a ledger row costs no query. Entries are
/// effective-dated, so an entry written ahead of its time switches every coordinator at the same moment; one written
/// to take effect at once reaches other coordinators within the refresh interval.
/// </summary>
public sealed class PriceBookCache(IDbContextFactory<FarmDbContext> contextFactory, CoordinatorOptions options, TimeProvider time) : IDisposable
{
    private readonly SemaphoreSlim _loading = new(1, 1);
    private volatile Snapshot? _snapshot;
    private int _generation;
    private bool _seeded;

    public async ValueTask<PriceBook> CurrentAsync(CancellationToken cancellationToken)
    {
        var snapshot = _snapshot;
        if (snapshot is not null && Stopwatch.GetElapsedTime(snapshot.ReadAt) < options.PriceBookRefresh)
        {
            return snapshot.Book;
        }

        // A stale book is still right for everything already in force: callers use it while one of them reloads.
        if (snapshot is not null && !await _loading.WaitAsync(0, cancellationToken))
        {
            return snapshot.Book;
        }

        if (snapshot is null)
        {
            await _loading.WaitAsync(cancellationToken);
        }

        try
        {
            if (_snapshot is { } fresh && Stopwatch.GetElapsedTime(fresh.ReadAt) < options.PriceBookRefresh)
            {
                return fresh.Book;
            }

            // A book read while a write was forgotten may predate that write: it answers this caller, whose read
            // began before the write, and is not kept.
            var generation = Volatile.Read(ref _generation);
            var book = await LoadAsync(cancellationToken);
            if (generation == Volatile.Read(ref _generation))
            {
                _snapshot = new Snapshot(Stopwatch.GetTimestamp(), book);
            }

            return book;
        }
        finally
        {
            _loading.Release();
        }
    }

    public void Dispose() => _loading.Dispose();

    /// <summary>A write through this coordinator is billed by from its next read.</summary>
    public void Forget()
    {
        Interlocked.Increment(ref _generation);
        _snapshot = null;
    }

    private async Task<PriceBook> LoadAsync(CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        if (!_seeded)
        {
            await SeedAsync(db, cancellationToken);
            _seeded = true;
        }

        var devices = await db.DevicePrices.AsNoTracking().ToListAsync(cancellationToken);
        var carbon = await db.CarbonIntensities.AsNoTracking().ToListAsync(cancellationToken);
        return new PriceBook(
            devices.Select(d => new DevicePriceEntry(d.Sku, NullIfFarm(d.Project), Utc(d.EffectiveFrom), d.DollarsPerHour, d.RatedWatts)),
            carbon.Select(c => new CarbonIntensityEntry(c.Pool, NullIfFarm(c.Project), Utc(c.EffectiveFrom), c.GramsPerKwh)));
    }

    /// <summary>
    /// The configured prices (<c>Pricing:Devices</c>, else the public defaults) and carbon intensities are the book's
    /// first entries, in force since the epoch. Each is written once: on a farm's first start (or when a SKU is
    /// first configured); after that the book is changed through the API, and a changed setting is ignored.
    /// Concurrent coordinators insert the same rows: the unique key keeps one.
    /// </summary>
    private async Task SeedAsync(FarmDbContext db, CancellationToken cancellationToken)
    {
        var epoch = DateTime.UnixEpoch;
        var now = time.GetUtcNow().UtcDateTime;
        foreach (var price in options.Prices.Prices)
        {
            await db.Database.ExecuteSqlAsync(
                $"INSERT INTO device_prices (sku, project, effective_from, dollars_per_hour, rated_watts, created_at) VALUES ({price.Sku}, '', {epoch}, {price.DollarsPerHour}, {price.RatedWatts}, {now}) ON CONFLICT (sku, project, effective_from) DO NOTHING",
                cancellationToken);
        }

        foreach (var (pool, grams) in options.CarbonIntensities)
        {
            await db.Database.ExecuteSqlAsync(
                $"INSERT INTO carbon_intensities (pool, project, effective_from, grams_per_kwh, created_at) VALUES ({pool}, '', {epoch}, {grams}, {now}) ON CONFLICT (pool, project, effective_from) DO NOTHING",
                cancellationToken);
        }
    }

    private static string? NullIfFarm(string project) => project.Length == 0 ? null : project;

    /// <summary>SQLite hands times back unspecified; they were written as UTC.</summary>
    internal static DateTime Utc(DateTime value) => DateTime.SpecifyKind(value, DateTimeKind.Utc);

    private sealed record Snapshot(long ReadAt, PriceBook Book);
}

/// <summary>
/// Seeds and reads the price book when the coordinator starts, so the first bill does not wait for it and no request
/// (a read, or a refused write) is what first writes the configured prices.
/// </summary>
public sealed class PriceBookWarmUp(PriceBookCache cache) : Microsoft.Extensions.Hosting.IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken) => await cache.CurrentAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
