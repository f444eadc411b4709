namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>Finds the model files: next to the binaries (<c>models/</c> copied beside them) or in an ancestor directory.</summary>
public static class ModelLocator
{
    /// <summary>The default weights file name relative to a directory holding <c>models/</c>.</summary>
    public const string DefaultRelativePath = "models/pf-scene-v3.safetensors";

    /// <summary>
    /// Walks up from <paramref name="start"/> (default <see cref="AppContext.BaseDirectory"/>) and returns the first
    /// <c>dir/relativePath</c> that exists, or null.
    /// </summary>
    public static string? Find(string relativePath = DefaultRelativePath, string? start = null)
    {
        for (var dir = new DirectoryInfo(start ?? AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, relativePath);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Like <see cref="Find"/> but throws a helpful error when the file is missing.</summary>
    public static string FindRequired(string relativePath = DefaultRelativePath, string? start = null) =>
        Find(relativePath, start) ?? throw new FileNotFoundException(
            $"Could not find '{relativePath}' in {start ?? AppContext.BaseDirectory} or any parent directory; " +
            "copy the models folder next to the binaries or set the model path explicitly.", relativePath);
}
