using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ProgrammableFilm.Coordinator.Plates;
using ProgrammableFilm.Domain.Specs;

namespace ProgrammableFilm.Cli;

/// <summary>
/// <c>plate: {path: …}</c> for <c>pfilm render</c>: the file (an MP4 or an image) or folder (its PNG and JPEG images in
/// name order), relative to the spec file, is ingested into the embedded farm as the farm API would ingest an upload,
/// and the shot then names it by id. The uploader is the local user. The ids ingested are added to
/// <c>ingested</c> as they are made, so that a caller whose submission is then refused can discard them all.
/// </summary>
internal static class LocalPlates
{
    public static async Task<JobSpec> IngestAsync(IHost host, JobSpec spec, DirectoryInfo specFolder, ICollection<Guid> ingested, CancellationToken cancellationToken)
    {
        var store = host.Services.GetRequiredService<PlateStore>();
        var shots = new List<ShotSpec>(spec.Shots.Count);
        for (var i = 0; i < spec.Shots.Count; i++)
        {
            var shot = spec.Shots[i];
            if (shot.Plate is not { Id: null, Path: { } path } plate)
            {
                shots.Add(shot);
                continue;
            }

            var field = $"shots[{i}].plate.path";
            var full = Path.GetFullPath(path, specFolder.FullName);
            var files = Directory.Exists(full)
                ? Directory.GetFiles(full).Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".jpeg", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal).ToList()
                : File.Exists(full) ? [full] : throw new PlateRejectedException(field, $"'{path}' is neither a file nor a folder (relative to {specFolder.FullName})");
            var info = await store.IngestAsync(spec.Project, ReadAsync(field, files), $"local:{Environment.UserName}", null, cancellationToken);
            ingested.Add(info.Id);
            shots.Add(shot with { Plate = plate with { Id = info.Id } });
        }

        return spec with { Shots = shots };
    }

    /// <summary>
    /// The submission checks a plate by the id it was ingested under; the user wrote a path, so the error names that.
    /// </summary>
    public static string FieldAsWritten(string field, JobSpec written)
    {
        for (var i = 0; i < written.Shots.Count; i++)
        {
            if (written.Shots[i].Plate is { Path: not null } && field == $"shots[{i}].plate.id")
            {
                return $"shots[{i}].plate.path";
            }
        }

        return field;
    }

    public static Task DiscardAsync(IHost host, IReadOnlyCollection<Guid> ingested, CancellationToken cancellationToken) =>
        host.Services.GetRequiredService<PlateStore>().DiscardAsync(ingested, cancellationToken);

    private static async IAsyncEnumerable<PlateFile> ReadAsync(string field, IReadOnlyList<string> files)
    {
        foreach (var file in files)
        {
            await using var stream = File.OpenRead(file);
            yield return new PlateFile(field, file, stream);
        }
    }
}
