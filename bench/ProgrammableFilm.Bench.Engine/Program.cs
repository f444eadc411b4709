using System.Diagnostics;
using System.Globalization;
using ProgrammableFilm.Engine.Diffusion;
using ProgrammableFilm.Engine.Torch;

// Engine benchmark, C# and TorchSharp parts of bench/engine.sh (--engine torchsharp: the same measures on the TorchSharp
// engine, lines prefixed "torchsharp", SGEMM roof = torch.mm through LibTorch). Prints machine-readable lines in the format of tools/train/bench_torch.py:
//   csharp sgemm n=2048 gflops=...
//   csharp forward batch=2 ms=... gflops=...                 (network batch)
//   csharp keyframe batch=1 steps=20 guidance=3.0 fps=... sec_per_frame=... gflops=...
// "batch" on sampling lines counts frames; guidance doubles the network batch. Warm-up first, then best of --reps.
// Usage: ProgrammableFilm.Bench.Engine [--threads N] [--steps 20] [--batch 8] [--reps 2] [--model path] [--sgemm-n 2048]
//        [--only all|sgemm|forward|sample|conv|profile] [--engine csharp|torchsharp]
var argsMap = ParseArgs(args);
int threads = int.Parse(argsMap.GetValueOrDefault("threads", "0"), CultureInfo.InvariantCulture);
int steps = int.Parse(argsMap.GetValueOrDefault("steps", "20"), CultureInfo.InvariantCulture);
int workerBatch = int.Parse(argsMap.GetValueOrDefault("batch", "8"), CultureInfo.InvariantCulture);
int reps = int.Parse(argsMap.GetValueOrDefault("reps", "2"), CultureInfo.InvariantCulture);
int sgemmN = int.Parse(argsMap.GetValueOrDefault("sgemm-n", "2048"), CultureInfo.InvariantCulture);
string modelPath = argsMap.GetValueOrDefault("model") ?? ModelLocator.FindRequired();
string only = argsMap.GetValueOrDefault("only", "all");
threads = threads <= 0 ? Environment.ProcessorCount : threads;
if (argsMap.GetValueOrDefault("engine", "csharp") == "torchsharp")
{
    return TorchBench.Run(modelPath, threads, steps, workerBatch, reps, sgemmN, only);
}

using var model = DiffusionModel.Load(modelPath, new DiffusionModelOptions { Threads = threads, MaxFrameBatch = workerBatch });
Console.WriteLine($"# csharp isa={model.Isa} threads={threads} model={model.ModelId} flops_per_image={model.FlopsPerImage}");

if (only is "all" or "sgemm")
{
    double gflops = Bench.SgemmRoof(sgemmN, threads, Math.Max(3, reps));
    Console.WriteLine(FormattableString.Invariant($"csharp sgemm n={sgemmN} gflops={gflops:F1}"));
}

if (only is "all" or "forward")
{
    foreach (int b in new[] { 2, 2 * workerBatch })
    {
        double ms = Bench.Forward(model, b, Math.Max(5, reps));
        double gflops = model.FlopsPerImage * (double)b / (ms * 1e6);
        Console.WriteLine(FormattableString.Invariant($"csharp forward batch={b} ms={ms:F2} gflops={gflops:F1}"));
    }
}

if (only == "conv")
{
    foreach (var (ci, co, size, ks, st) in new[] { (48, 48, 32, 3, 1), (144, 48, 32, 3, 1), (96, 96, 16, 3, 1), (48, 96, 32, 3, 2), (144, 48, 32, 1, 1) })
    {
        foreach (int t in new[] { 1, 2 })
        {
            var (g, gc) = Bench.Conv(ci, co, size, ks, st, 16, t);
            Console.WriteLine(FormattableString.Invariant($"conv {ci}->{co} {size}x{size} k{ks} s{st} threads={t}: {g:F1} GFLOP/s wall, {gc:F1} GFLOP per CPU-second"));
        }
    }
}

if (only == "profile")
{
    int b = int.Parse(argsMap.GetValueOrDefault("nb", "16"), CultureInfo.InvariantCulture);
    var totals = new Dictionary<string, double>(StringComparer.Ordinal);
    Bench.Forward(model, b, 2);
    UNet.Profile = (stage, sec) => totals[stage] = totals.GetValueOrDefault(stage) + sec;
    int runs = 10;
    Bench.Forward(model, b, runs);
    UNet.Profile = null;
    var cpuStart = Process.GetCurrentProcess().TotalProcessorTime;
    var wall = Stopwatch.StartNew();
    Bench.Forward(model, b, runs);
    Console.WriteLine(FormattableString.Invariant($"  wall {wall.Elapsed.TotalMilliseconds / (runs + 1):F2} ms/forward, cpu {(Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalMilliseconds / (runs + 1):F2} ms/forward"));
    foreach (var (stage, sec) in totals)
    {
        Console.WriteLine(FormattableString.Invariant($"  {stage,-14} {sec * 1000 / (runs + 1),8:F2} ms"));
    }

    Console.WriteLine(FormattableString.Invariant($"  total          {totals.Values.Sum() * 1000 / (runs + 1),8:F2} ms"));
}

if (only is "all" or "sample")
{
    foreach (string mode in new[] { "keyframe", "inbetween" })
    {
        foreach (int b in new[] { 1, workerBatch })
        {
            double seconds = Bench.Sample(model, mode, b, steps, reps);
            double gflops = 2.0 * b * steps * model.FlopsPerImage / seconds / 1e9;
            Console.WriteLine(FormattableString.Invariant($"csharp {mode} batch={b} steps={steps} guidance=3.0 fps={b / seconds:F3} sec_per_frame={seconds / b:F4} gflops={gflops:F1}"));
        }
    }
}

return 0;

static Dictionary<string, string> ParseArgs(string[] args)
{
    var map = new Dictionary<string, string>(StringComparer.Ordinal);
    for (int i = 0; i < args.Length; i++)
    {
        if (args[i].StartsWith("--", StringComparison.Ordinal))
        {
            map[args[i][2..]] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "true";
        }
    }

    return map;
}

internal static unsafe class Bench
{
    /// <summary>Best-of-reps GFLOP/s of an n³ SGEMM with the engine's own kernel (after one warm-up).</summary>
    public static double SgemmRoof(int n, int threads, int reps)
    {
        var rng = new Random(1);
        var a = new float[n * n];
        var b = new float[n * n];
        var c = new float[n * n];
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = (float)rng.NextDouble();
            b[i] = (float)rng.NextDouble();
        }

        var isa = GemmKernels.Best;
        var parallel = new Parallelism(threads);
        double best = double.MaxValue;
        fixed (float* pa = a, pb = b, pc = c)
        {
            var packed = new NativeBuffer(Gemm.PackedASize(isa, n, n));
            try
            {
                for (int r = 0; r < reps + 1; r++)
                {
                    var sw = Stopwatch.StartNew();
                    Gemm.PackA(isa, pa, n, 1, n, n, packed.Pointer);
                    Gemm.MultiplyPacked(parallel, isa, n, n, n, packed.Pointer, pb, n, 1, pc, n);
                    sw.Stop();
                    if (r > 0)
                    {
                        best = Math.Min(best, sw.Elapsed.TotalSeconds);
                    }
                }
            }
            finally
            {
                packed.Dispose();
            }
        }

        return 2.0 * n * n * n / best / 1e9;
    }

    public static (double Wall, double PerCpu) Conv(int ci, int co, int size, int ks, int stride, int n, int threads)
    {
        var isa = GemmKernels.Best;
        var w = new float[co * ci * ks * ks];
        var bias = new float[co];
        new Random(1).NextBytes(new byte[1]);
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = 0.01f * (i % 7);
        }

        using var conv = new Conv2d(isa, w, bias, ci, co, ks, stride, ks / 2);
        int o = conv.OutSize(size);
        bool padded = ks == 3 && stride == 1 && Environment.GetEnvironmentVariable("PF_NOPAD") is null;
        using var x = new NativeBuffer((long)n * ci * (size + 2) * (size + 2));
        using var y = new NativeBuffer((long)n * co * o * o);
        var xv = new TensorView(x.Pointer, n, ci, size, size, padded: padded);
        var yv = new TensorView(y.Pointer, n, co, o, o);
        var p = new Parallelism(threads);
        conv.Forward(p, xv, yv);
        double bestWall = 0, bestCpu = 0;
        for (int trial = 0; trial < 7; trial++)
        {
            var sw = Stopwatch.StartNew();
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            int reps = 5;
            for (int r = 0; r < reps; r++)
            {
                conv.Forward(p, xv, yv);
            }

            double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
            double flops = conv.Flops(n, size, size) * (double)reps / 1e9;
            bestWall = Math.Max(bestWall, flops / sw.Elapsed.TotalSeconds);
            bestCpu = Math.Max(bestCpu, flops / cpu);
        }

        return (bestWall, bestCpu);
    }

    /// <summary>Best-of milliseconds of one U-Net forward at network batch <paramref name="batch"/>.</summary>
    public static double Forward(DiffusionModel model, int batch, int reps)
    {
        int plane = 3 * model.ImageSize * model.ImageSize;
        var x = new float[batch * plane];
        GaussianNoise.Fill(1, 0, x);
        var zeros = new float[batch * plane];
        var cond = Enumerable.Range(0, batch).Select(i => new UNetConditioning(500, 1, 1, 1, 1, 0.5f, 0f, 0f)).ToArray();
        model.Forward(x, zeros, zeros, [], cond);
        var times = new List<double>();
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            model.Forward(x, zeros, zeros, [], cond);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }

        return times.Min();
    }

    /// <summary>Best-of seconds to sample <paramref name="frames"/> frames together (one warm-up run first).</summary>
    public static double Sample(IDiffusionSampler model, string mode, int frames, int steps, int reps)
    {
        int plane = 3 * model.Config.ImageSize * model.Config.ImageSize;
        bool inbetween = mode == "inbetween";
        var keyA = new float[plane];
        var keyB = new float[plane];
        GaussianNoise.Fill(7, 0, keyA);
        GaussianNoise.Fill(7, 8, keyB);
        var specs = Enumerable.Range(0, frames).Select(f =>
        {
            var noise = new float[plane];
            GaussianNoise.Fill(42, f, noise);
            float alpha = inbetween ? (f + 1f) / (frames + 1f) : 0f;
            var cond = new UNetConditioning(0, 1, 1, 1, 1, f / 10f, alpha, inbetween ? 1f : 0f);
            return inbetween ? new FrameSpec(noise, cond, keyA, keyB) : new FrameSpec(noise, cond);
        }).ToList();
        var settings = new SamplerSettings(steps, 3f);
        model.Sample(specs, settings, null, CancellationToken.None);
        var times = new List<double>();
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            model.Sample(specs, settings, null, CancellationToken.None);
            times.Add(sw.Elapsed.TotalSeconds);
        }

        return times.Min();
    }
}

/// <summary>The TorchSharp engine's half: same measures, same inputs, lines prefixed <c>torchsharp</c>.</summary>
internal static class TorchBench
{
    public static int Run(string modelPath, int threads, int steps, int workerBatch, int reps, int sgemmN, string only)
    {
        using var model = TorchDiffusionModel.Load(modelPath, new TorchEngineOptions { Device = "cpu", Threads = threads, MaxFrameBatch = workerBatch });
        long flops;
        using (var native = DiffusionModel.Load(modelPath, new DiffusionModelOptions { Threads = 1, MaxFrameBatch = 1 }))
        {
            flops = native.FlopsPerImage;
        }

        Console.WriteLine($"# torchsharp device={model.DeviceInfo.Device} precision={model.DeviceInfo.Precision} threads={model.Threads} model={model.ModelId} flops_per_image={flops}");
        if (only is "all" or "sgemm")
        {
            Console.WriteLine(FormattableString.Invariant($"torchsharp sgemm n={sgemmN} gflops={SgemmRoof(sgemmN, Math.Max(3, reps)):F1}"));
        }

        if (only is "all" or "forward")
        {
            foreach (int b in new[] { 2, 2 * workerBatch })
            {
                double ms = Forward(model, b, Math.Max(5, reps));
                Console.WriteLine(FormattableString.Invariant($"torchsharp forward batch={b} ms={ms:F2} gflops={flops * (double)b / (ms * 1e6):F1}"));
            }
        }

        if (only is "all" or "sample")
        {
            foreach (string mode in new[] { "keyframe", "inbetween" })
            {
                foreach (int b in new[] { 1, workerBatch })
                {
                    double seconds = Bench.Sample(model, mode, b, steps, reps);
                    double gflops = 2.0 * b * steps * flops / seconds / 1e9;
                    Console.WriteLine(FormattableString.Invariant($"torchsharp {mode} batch={b} steps={steps} guidance=3.0 fps={b / seconds:F3} sec_per_frame={seconds / b:F4} gflops={gflops:F1}"));
                }
            }
        }

        return 0;
    }

    private static double SgemmRoof(int n, int reps)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var a = TorchSharp.torch.rand(n, n);
        var b = TorchSharp.torch.rand(n, n);
        TorchSharp.torch.mm(a, b).Dispose();
        double best = double.MaxValue;
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            TorchSharp.torch.mm(a, b).Dispose();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }

        return 2.0 * n * n * n / best / 1e9;
    }

    private static double Forward(TorchDiffusionModel model, int batch, int reps)
    {
        int plane = 3 * model.Config.ImageSize * model.Config.ImageSize;
        var x = new float[batch * plane];
        GaussianNoise.Fill(1, 0, x);
        var zeros = new float[batch * plane];
        var cond = Enumerable.Range(0, batch).Select(i => new UNetConditioning(500, 1, 1, 1, 1, 0.5f, 0f, 0f)).ToArray();
        model.Forward(x, zeros, zeros, [], cond);
        var times = new List<double>();
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            model.Forward(x, zeros, zeros, [], cond);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }

        return times.Min();
    }
}
