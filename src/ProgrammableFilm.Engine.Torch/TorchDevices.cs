using System.Diagnostics;
using System.Globalization;
using ProgrammableFilm.Engine.Diffusion;
using TorchSharp;
using static TorchSharp.torch;

namespace ProgrammableFilm.Engine.Torch;

/// <summary>The device a TorchSharp engine runs on, as the worker reports it (name, memory) and the manifest records it.</summary>
/// <param name="Device">LibTorch device string: <c>cpu</c>, <c>cuda:0</c>, ...</param>
/// <param name="Name">Human-readable name, e.g. <c>NVIDIA L40S</c> or the CPU model.</param>
/// <param name="MemoryBytes">Device memory (GPU memory, or the machine's RAM for the CPU); 0 when unknown.</param>
/// <param name="Precision">The network's precision: <c>fp32</c>, <c>fp16</c> or <c>bf16</c>.</param>
public sealed record TorchDeviceInfo(string Device, string Name, long MemoryBytes, string Precision)
{
    /// <summary>True for a CUDA device.</summary>
    public bool IsCuda => Device.StartsWith("cuda", StringComparison.Ordinal);
}

/// <summary>Device choice for the TorchSharp engine: CUDA when TorchSharp's CUDA libraries and a GPU are present, else the CPU.</summary>
public static class TorchDevices
{
    /// <summary>
    /// Whether this process could run on CUDA, from files only (without loading LibTorch, which maps about 500 MB):
    /// the CUDA build of LibTorch next to the binaries and an NVIDIA driver with at least one GPU. The worker uses it to
    /// choose between the native and the TorchSharp engine; <see cref="Resolve"/> asks LibTorch itself.
    /// </summary>
    public static bool CudaLikelyPresent()
    {
        string bin = AppContext.BaseDirectory;
        bool cudaTorch = File.Exists(Path.Combine(bin, "libtorch_cuda.so"))
            || File.Exists(Path.Combine(bin, "runtimes", "linux-x64", "native", "libtorch_cuda.so"));
        bool gpu = File.Exists("/dev/nvidia0")
            || (Directory.Exists("/proc/driver/nvidia/gpus") && Directory.EnumerateFileSystemEntries("/proc/driver/nvidia/gpus").Any());
        return cudaTorch && gpu;
    }

    /// <summary>
    /// Loads LibTorch and picks the device and precision (<see cref="TorchEngineOptions.Device"/>,
    /// <see cref="TorchEngineOptions.Precision"/>): <c>auto</c> is the first CUDA device in fp16 when LibTorch sees one,
    /// else the CPU in fp32.
    /// </summary>
    public static TorchDeviceInfo Resolve(string device = "auto", string precision = "auto")
    {
        TorchNative.EnsureLoaded();
        bool cuda = device switch
        {
            "auto" => torch.cuda.is_available(),
            "cpu" => false,
            _ when device.StartsWith("cuda", StringComparison.Ordinal) => torch.cuda.is_available()
                ? true
                : throw new InvalidOperationException($"Device '{device}' was asked for, but LibTorch sees no CUDA device (the CPU build of TorchSharp, or no GPU/driver)."),
            _ => throw new ArgumentException($"Unknown device '{device}': use auto, cpu, cuda or cuda:N.", nameof(device)),
        };
        string name = cuda ? (device == "auto" || device == "cuda" ? "cuda:0" : device) : "cpu";
        string p = precision switch
        {
            "auto" => cuda ? "fp16" : "fp32",
            "fp32" or "fp16" or "bf16" => precision,
            _ => throw new ArgumentException($"Unknown precision '{precision}': use auto, fp32, fp16 or bf16.", nameof(precision)),
        };
        if (cuda)
        {
            int index = int.Parse(name[5..], CultureInfo.InvariantCulture);
            var (gpuName, memory) = QueryGpu(index);
            return new TorchDeviceInfo(name, gpuName, memory, p);
        }

        return new TorchDeviceInfo("cpu", CpuDevice.Name(), CpuDevice.MemoryBytes(), p);
    }

    internal static ScalarType DType(string precision) => precision switch
    {
        "fp16" => ScalarType.Float16,
        "bf16" => ScalarType.BFloat16,
        _ => ScalarType.Float32,
    };

    /// <summary>
    /// Name and memory of GPU <paramref name="index"/> from <c>nvidia-smi</c> (LibTorch's C API, which TorchSharp wraps,
    /// has no device-properties call). Untested here: these machines have no GPU.
    /// </summary>
    private static (string Name, long MemoryBytes) QueryGpu(int index)
    {
        try
        {
            var psi = new ProcessStartInfo("nvidia-smi", $"--query-gpu=name,memory.total --format=csv,noheader,nounits --id={index}")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(psi);
            if (process is not null)
            {
                string output = process.StandardOutput.ReadToEnd();
                process.WaitForExit(10_000);
                var parts = output.Trim().Split(',', StringSplitOptions.TrimEntries);
                if (process.ExitCode == 0 && parts.Length == 2 && long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out long mib))
                {
                    return (parts[0], mib * 1024 * 1024);
                }
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No nvidia-smi on PATH: report what LibTorch knows.
        }

        return ($"CUDA device {index}", 0);
    }
}

/// <summary>Loads LibTorch once, turning TorchSharp's misleading load error into one that names the likely cause.</summary>
internal static class TorchNative
{
    private static readonly Lazy<bool> Loaded = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    public static void EnsureLoaded() => _ = Loaded.Value;

    private static bool Load()
    {
        try
        {
            // Any call that needs the native backend loads it; this one is cheap.
            _ = torch.cuda.is_available();
            return true;
        }
        catch (Exception e) when (e is NotSupportedException or DllNotFoundException or TypeInitializationException)
        {
            throw new InvalidOperationException(
                "TorchSharp could not load its native libraries (libLibTorchSharp.so, libtorch_cpu.so). On Debian 12 the " +
                "usual cause is libLibTorchSharp.so needing GLIBCXX_3.4.32, which Debian 12's libstdc++ lacks: the build " +
                "patches it (build/TorchSharpNative.targets in ProgrammableFilm.Engine.Torch) when it runs on such a " +
                "machine; if the binaries were built elsewhere, rebuild with -p:TorchSharpPatchLibStdCxx=true. " +
                $"TorchSharp said: {e.Message}", e);
        }
    }
}
