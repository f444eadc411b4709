namespace ProgrammableFilm.Storage;

/// <summary>
/// Output storage shared by workers and the coordinator: a directory (local disk or a shared mount). Paths handed
/// around in messages and rows are relative to the root so that every process can resolve them against its own mount.
/// </summary>
public sealed class ShotStorage
{
    public ShotStorage(string root)
    {
        Root = Path.GetFullPath(root);
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    /// <summary>The shot's folder relative to the root.</summary>
    public static string ShotFolder(Guid jobId, string shotName) => $"{jobId:N}/{shotName}";

    /// <summary>A take's folder: takes of a sweep or an iteration sit side by side under the shot's folder.</summary>
    public static string TakeFolder(Guid jobId, string shotName, int take) => $"{ShotFolder(jobId, shotName)}/take-{take:D2}";

    /// <summary>The contact sheet of a shot's takes, written beside them.</summary>
    public static string ContactSheetPath(Guid jobId, string shotName) => $"{ShotFolder(jobId, shotName)}/takes.html";

    /// <summary>A frame's path relative to the root.</summary>
    public static string FramePath(string shotFolder, int frame) => $"{shotFolder}/frames/{frame:D5}.png";

    public static string VideoPath(string shotFolder) => $"{shotFolder}/shot.mp4";

    /// <summary>A shot that interpolates: its video at the rendered frame rate, kept beside the interpolated <c>shot.mp4</c>.</summary>
    public static string BaseVideoPath(string shotFolder) => $"{shotFolder}/base.mp4";

    /// <summary>An uploaded camera plate's decoded frames (<c>NNNNN.png</c>).</summary>
    public static string PlateFolder(Guid plateId) => $"plates/{plateId:N}";

    public static string ManifestPath(string shotFolder) => $"{shotFolder}/manifest.json";

    public static string CostSummaryPath(Guid jobId) => $"{jobId:N}/cost.json";

    /// <summary>Resolves a relative path, refusing anything that would escape the root.</summary>
    public string FullPath(string relativePath)
    {
        var full = Path.GetFullPath(Path.Combine(Root, relativePath));
        if (!full.StartsWith(Root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{relativePath}' is outside the storage root.", nameof(relativePath));
        }

        return full;
    }

    public bool Exists(string relativePath) => File.Exists(FullPath(relativePath));

    /// <summary>Removes a folder and everything under it, if it is there.</summary>
    public void DeleteFolder(string relativePath)
    {
        var full = FullPath(relativePath);
        if (Directory.Exists(full))
        {
            Directory.Delete(full, recursive: true);
        }
    }

    /// <summary>
    /// Writes a file so that readers see either the old content or all of the new, never a torn file: an attempt
    /// killed mid-write leaves only a temporary file, and a re-run attempt overwrites the same name.
    /// </summary>
    public async Task WriteAtomicAsync(string relativePath, Func<Stream, Task> write, CancellationToken cancellationToken)
    {
        var full = FullPath(relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temporary = $"{full}.{Guid.NewGuid():N}.tmp";
        try
        {
            await using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await write(stream);
            }

            cancellationToken.ThrowIfCancellationRequested();
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    public Task WriteAtomicAsync(string relativePath, byte[] bytes, CancellationToken cancellationToken) =>
        WriteAtomicAsync(relativePath, stream => stream.WriteAsync(bytes, cancellationToken).AsTask(), cancellationToken);

    /// <summary>
    /// Gives <paramref name="target"/> the content of <paramref name="source"/> (a frame another take reuses), atomically
    /// like every write. A copy, not a link: a take's folder stays whole on its own (retention, downloads, an object
    /// store), and a keyframe is a few kilobytes.
    /// </summary>
    public void Copy(string source, string target)
    {
        var full = FullPath(target);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temporary = $"{full}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.Copy(FullPath(source), temporary);
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    public Stream OpenRead(string relativePath) => new FileStream(FullPath(relativePath), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
}
