using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ProgrammableFilm.Engine;
using ProgrammableFilm.Engine.Imaging;
using ProgrammableFilm.Engine.Procedural;
using ProgrammableFilm.Engine.Scene;

// Generates the pf-scene training set: every (background, object, colour, motion) combination, K times, rendered by
// the procedural engine. Output layout and recipe: see ClipGenOptions and docs/model.md.
if (!ClipGenOptions.TryParse(args, out var options, out var error))
{
    Console.Error.WriteLine(error);
    Console.Error.WriteLine(ClipGenOptions.Usage);
    return 2;
}

var stopwatch = Stopwatch.StartNew();
var vocabulary = SceneVocabulary.Default;
var generator = new ClipGenerator(vocabulary, options);
Directory.CreateDirectory(options.OutputDirectory);
generator.WriteDataset();
if (options.PreviewPath is not null)
{
    Png.Write(generator.RenderContactSheet(), options.PreviewPath);
}

var frameBytes = (long)generator.ClipCount * options.Frames * options.Size * options.Size * 3;
Console.WriteLine(string.Create(
    CultureInfo.InvariantCulture,
    $"ClipGen: {generator.ClipCount} clips x {options.Frames} frames of {options.Size}x{options.Size} (seed {options.Seed}) -> {options.OutputDirectory} ({frameBytes / 1e6:0.0} MB of frames) in {stopwatch.Elapsed.TotalSeconds:0.0} s"));
return 0;

/// <summary>Command-line options of ClipGen.</summary>
internal sealed record ClipGenOptions(string OutputDirectory, int ClipsPerScene, int Frames, int Size, long Seed, string? PreviewPath)
{
    public const string Usage =
        "usage: ClipGen --out DIR [--clips-per-scene K=1] [--frames F=16] [--size PX=64] [--seed S=0] [--preview FILE.png]";

    public static bool TryParse(string[] args, out ClipGenOptions options, out string error)
    {
        string? output = null, preview = null;
        int clipsPerScene = 1, frames = 16, size = 64;
        long seed = 0;
        options = null!;
        error = "";
        for (var i = 0; i < args.Length; i++)
        {
            if (i + 1 >= args.Length)
            {
                error = $"Missing value for {args[i]}.";
                return false;
            }

            var value = args[++i];
            var ok = args[i - 1] switch
            {
                "--out" => (output = value) is not null,
                "--preview" => (preview = value) is not null,
                "--clips-per-scene" => int.TryParse(value, CultureInfo.InvariantCulture, out clipsPerScene) && clipsPerScene >= 1,
                "--frames" => int.TryParse(value, CultureInfo.InvariantCulture, out frames) && frames >= 1,
                "--size" => int.TryParse(value, CultureInfo.InvariantCulture, out size) && size is >= 8 and <= 4096,
                "--seed" => long.TryParse(value, CultureInfo.InvariantCulture, out seed),
                _ => false,
            };
            if (!ok)
            {
                error = $"Bad option or value: {args[i - 1]} {value}";
                return false;
            }
        }

        if (output is null)
        {
            error = "--out is required.";
            return false;
        }

        options = new ClipGenOptions(output, clipsPerScene, frames, size, seed, preview);
        return true;
    }
}

/// <summary>Renders the clips and writes <c>frames.u8</c>, <c>masks.u8</c>, <c>layout.u8</c>, <c>labels.i32</c> and <c>dataset.json</c>.</summary>
internal sealed class ClipGenerator(SceneVocabulary vocabulary, ClipGenOptions options)
{
    // Clips rendered in parallel before being written in order: bounds memory (about 20 MB at 64 px, 24 frames).
    private const int BatchSize = 64;

    private readonly int _combinations =
        vocabulary.Backgrounds.Count * vocabulary.Objects.Count * vocabulary.Colours.Count * vocabulary.Motions.Count;

    public int ClipCount => _combinations * options.ClipsPerScene;

    // Integers only: their text does not depend on the culture.
    private string Recipe =>
        $"ProgrammableFilm procedural renderer. Clip c = r * {_combinations} + k for repetition r in 0..{options.ClipsPerScene - 1} and " +
        "combination k = ((background * objects + object) * colours + colour) * motions + motion over 0-based vocabulary positions " +
        "(motion varies fastest); labels are those positions + 1. Layout seed of clip c = SplitMix64.Hash(seed, c) as int64. " +
        $"Frame i of {options.Frames} is rendered at shot position i / (frames - 1) (0 for a single frame), {options.Size}x{options.Size} RGB uint8, rows top to bottom. " +
        "masks.u8 has one byte per pixel of each frame: 1 where the pixel changes when the object's colour is replaced by its complement (the body and its rim), else 0. " +
        "layout.u8 has one byte per pixel of each frame: the fraction of the pixel inside the object's bounding box (ObjectLayout.RenderBox) times 255.";

    public void WriteDataset()
    {
        var framePixels = options.Size * options.Size;
        var frameBytes = framePixels * 3;
        var clipBytes = frameBytes * options.Frames;
        using var frames = new FileStream(Path.Combine(options.OutputDirectory, "frames.u8"), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var masks = new FileStream(Path.Combine(options.OutputDirectory, "masks.u8"), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var layouts = new FileStream(Path.Combine(options.OutputDirectory, "layout.u8"), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var labels = new FileStream(Path.Combine(options.OutputDirectory, "labels.i32"), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        var batch = new byte[BatchSize][];
        var maskBatch = new byte[BatchSize][];
        var layoutBatch = new byte[BatchSize][];
        for (var i = 0; i < BatchSize; i++)
        {
            batch[i] = new byte[clipBytes];
            maskBatch[i] = new byte[framePixels * options.Frames];
            layoutBatch[i] = new byte[framePixels * options.Frames];
        }

        Span<byte> label = stackalloc byte[16];
        for (var start = 0; start < ClipCount; start += BatchSize)
        {
            var count = Math.Min(BatchSize, ClipCount - start);
            Parallel.For(0, count, j =>
            {
                var scene = SceneOf(start + j);
                var c = scene.ObjectColour;
                var recoloured = scene with { ObjectColour = new Rgb((byte)(255 - c.R), (byte)(255 - c.G), (byte)(255 - c.B)) };
                for (var f = 0; f < options.Frames; f++)
                {
                    var position = ShotPosition(f, options.Frames);
                    var image = ProceduralRenderer.RenderFrame(scene, position, options.Size, options.Size);
                    image.Pixels.CopyTo(batch[j], f * frameBytes);
                    ObjectLayout.RenderBox(scene, position, options.Size, options.Size).CopyTo(layoutBatch[j], f * framePixels);
                    var other = ProceduralRenderer.RenderFrame(recoloured, position, options.Size, options.Size).Pixels;
                    for (var p = 0; p < framePixels; p++)
                    {
                        var differs = image.Pixels[3 * p] != other[3 * p] || image.Pixels[(3 * p) + 1] != other[(3 * p) + 1] || image.Pixels[(3 * p) + 2] != other[(3 * p) + 2];
                        maskBatch[j][(f * framePixels) + p] = differs ? (byte)1 : (byte)0;
                    }
                }
            });

            for (var j = 0; j < count; j++)
            {
                frames.Write(batch[j]);
                masks.Write(maskBatch[j]);
                layouts.Write(layoutBatch[j]);
                var indices = LabelsOf(start + j);
                for (var s = 0; s < 4; s++)
                {
                    BinaryPrimitives.WriteInt32LittleEndian(label[(s * 4)..], indices[s]);
                }

                labels.Write(label);
            }
        }

        WriteMetadata();
    }

    /// <summary>A contact sheet of eight clips spread over the combinations, eight frames each, one clip per row.</summary>
    public RgbImage RenderContactSheet()
    {
        const int rows = 8;
        const int columns = 8;
        const int gap = 2;
        var size = options.Size;
        var sheet = new RgbImage((columns * (size + gap)) + gap, (rows * (size + gap)) + gap);
        Array.Fill(sheet.Pixels, (byte)255);
        for (var r = 0; r < rows; r++)
        {
            // An odd stride through the combinations visits different backgrounds, objects, colours and motions.
            var clip = (int)((r * 149L + 7) % ClipCount);
            var scene = SceneOf(clip);
            for (var c = 0; c < columns; c++)
            {
                var frame = options.Frames == 1 ? 0 : c * (options.Frames - 1) / (columns - 1);
                var image = ProceduralRenderer.RenderFrame(scene, ShotPosition(frame, options.Frames), size, size);
                var left = gap + (c * (size + gap));
                var top = gap + (r * (size + gap));
                for (var y = 0; y < size; y++)
                {
                    image.Pixels.AsSpan(y * size * 3, size * 3).CopyTo(sheet.Pixels.AsSpan((((top + y) * sheet.Width) + left) * 3));
                }
            }
        }

        return sheet;
    }

    private static double ShotPosition(int frame, int frames) => frames == 1 ? 0 : (double)frame / (frames - 1);

    private int[] LabelsOf(int clip)
    {
        var k = clip % _combinations;
        var motion = k % vocabulary.Motions.Count;
        k /= vocabulary.Motions.Count;
        var colour = k % vocabulary.Colours.Count;
        k /= vocabulary.Colours.Count;
        var obj = k % vocabulary.Objects.Count;
        var background = k / vocabulary.Objects.Count;
        return [background + 1, obj + 1, colour + 1, motion + 1];
    }

    private SceneDescription SceneOf(int clip)
    {
        var labels = LabelsOf(clip);
        var seed = unchecked((long)SplitMix64.Hash((ulong)options.Seed, (ulong)clip));
        return SceneDescription.Create(
            vocabulary.Backgrounds[labels[0] - 1],
            vocabulary.Objects[labels[1] - 1],
            vocabulary.Colours[labels[2] - 1],
            vocabulary.Motions[labels[3] - 1],
            seed,
            vocabulary);
    }

    private void WriteMetadata()
    {
        using var file = File.Create(Path.Combine(options.OutputDirectory, "dataset.json"));
        using var json = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteNumber("clips", ClipCount);
        json.WriteNumber("frames_per_clip", options.Frames);
        json.WriteNumber("size", options.Size);
        json.WriteNumber("seed", options.Seed);
        json.WriteStartObject("vocabulary");
        foreach (var slot in Enum.GetValues<SceneSlot>())
        {
            json.WriteStartArray(SceneVocabulary.SlotKey(slot));
            foreach (var name in vocabulary.Names(slot))
            {
                json.WriteStringValue(name);
            }

            json.WriteEndArray();
        }

        json.WriteEndObject();
        json.WriteString("recipe", Recipe);
        json.WriteEndObject();
    }
}
