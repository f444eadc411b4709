namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>The CPU as a worker reports it: a name and the memory available to the process.</summary>
public static class CpuDevice
{
    /// <summary>The CPU model from <c>/proc/cpuinfo</c> and the core count (the architecture where that file is absent).</summary>
    public static string Name()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            if (line is not null)
            {
                return $"{line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()} ({Environment.ProcessorCount} cores)";
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or no access: fall through to the architecture.
        }

        return $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture} CPU ({Environment.ProcessorCount} cores)";
    }

    /// <summary>The memory available to this process (a container's limit, else physical memory).</summary>
    public static long MemoryBytes() => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
}
