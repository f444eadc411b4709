using System.Text.Json;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>The architecture hyper-parameters stored as JSON in the weights file's <c>config</c> metadata (docs/model.md).</summary>
public sealed record UNetConfig
{
    /// <summary>Model name, e.g. <c>pf-scene</c>.</summary>
    public string Name { get; init; } = "pf-scene";

    /// <summary>Model version.</summary>
    public int Version { get; init; } = 1;

    /// <summary>Native image size (square).</summary>
    public int ImageSize { get; init; } = 64;

    /// <summary>Input channels of the concatenated input (x_t, A, B, and the layout plane when <see cref="Layout"/>).</summary>
    public int InChannels { get; init; } = 9;

    /// <summary>Output channels (RGB).</summary>
    public int OutChannels { get; init; } = 3;

    /// <summary>Trunk widths c0, c1, c2.</summary>
    public IReadOnlyList<int> Channels { get; init; } = [48, 96, 96];

    /// <summary>Whether a learned position table <c>pos_emb</c> [c0, S/2, S/2] is added after <c>patch_in</c> (version 2 on).</summary>
    public bool Positional { get; init; }

    /// <summary>Whether each ResBlock's embedding projection gives a scale and a shift applied after its second GroupNorm (version 3 on), instead of a shift before it.</summary>
    public bool ScaleShift { get; init; }

    /// <summary>Whether the tenth input channel is the object's planned box (version 3 on).</summary>
    public bool Layout { get; init; }

    /// <summary>Multiplier of s and alpha before their sinusoidal features: 1000 up to version 2, 10 from version 3 (smooth in the shot position).</summary>
    public float PlaceScale { get; init; } = 1000f;

    /// <summary>GroupNorm groups.</summary>
    public int Groups { get; init; } = 8;

    /// <summary>Embedding width E.</summary>
    public int EmbDim { get; init; } = 128;

    /// <summary>Width of the sinusoidal time features.</summary>
    public int TimeSinDim { get; init; } = 64;

    /// <summary>Width of each sinusoidal placement feature (s, alpha).</summary>
    public int PlaceSinDim { get; init; } = 32;

    /// <summary>GroupNorm epsilon.</summary>
    public double GnEps { get; init; } = 1e-5;

    /// <summary>Diffusion training steps T.</summary>
    public int T { get; init; } = 1000;

    /// <summary>Vocabulary sizes per prompt slot (background, object, colour, motion), without the 0 = none row.</summary>
    public IReadOnlyDictionary<string, int> VocabSizes { get; init; } = new Dictionary<string, int>();

    /// <summary>The JSON text this config was parsed from.</summary>
    public string Json { get; init; } = "{}";

    /// <summary>Parses the <c>config</c> metadata JSON (snake_case keys as written by tools/train/model.py).</summary>
    public static UNetConfig Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        var d = new UNetConfig();
        int Int(string key, int fallback) => r.TryGetProperty(key, out var v) ? v.GetInt32() : fallback;
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        if (r.TryGetProperty("vocab_sizes", out var vs))
        {
            foreach (var p in vs.EnumerateObject())
            {
                vocab[p.Name] = p.Value.GetInt32();
            }
        }

        if (r.TryGetProperty("schedule", out var sched) && sched.GetString() != "cosine")
        {
            throw new NotSupportedException($"Schedule '{sched.GetString()}' is not supported (cosine only).");
        }

        if (r.TryGetProperty("prediction", out var pred) && pred.GetString() != "v")
        {
            throw new NotSupportedException($"Prediction '{pred.GetString()}' is not supported (v only).");
        }

        return new UNetConfig
        {
            Name = r.TryGetProperty("name", out var n) ? n.GetString() ?? d.Name : d.Name,
            Version = Int("version", d.Version),
            ImageSize = Int("image_size", d.ImageSize),
            InChannels = Int("in_channels", d.InChannels),
            OutChannels = Int("out_channels", d.OutChannels),
            Channels = r.TryGetProperty("channels", out var ch) ? ch.EnumerateArray().Select(x => x.GetInt32()).ToArray() : d.Channels,
            Groups = Int("groups", d.Groups),
            EmbDim = Int("emb_dim", d.EmbDim),
            TimeSinDim = Int("time_sin_dim", d.TimeSinDim),
            PlaceSinDim = Int("place_sin_dim", d.PlaceSinDim),
            GnEps = r.TryGetProperty("gn_eps", out var e) ? e.GetDouble() : d.GnEps,
            T = Int("T", d.T),
            Positional = r.TryGetProperty("positional", out var positional) && positional.GetBoolean(),
            ScaleShift = r.TryGetProperty("scale_shift", out var scaleShift) && scaleShift.GetBoolean(),
            Layout = r.TryGetProperty("layout", out var layout) && layout.GetBoolean(),
            PlaceScale = r.TryGetProperty("place_scale", out var placeScale) ? placeScale.GetSingle() : d.PlaceScale,
            VocabSizes = vocab,
            Json = json,
        };
    }
}
