using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>Element types a safetensors file may hold that this reader understands.</summary>
public enum SafetensorsDType
{
    /// <summary>32-bit IEEE float, little-endian.</summary>
    F32,

    /// <summary>32-bit signed integer, little-endian.</summary>
    I32,

    /// <summary>64-bit signed integer, little-endian.</summary>
    I64,
}

/// <summary>One tensor's header entry: type, shape and byte range within the data section.</summary>
public sealed record SafetensorsEntry(string Name, SafetensorsDType DType, IReadOnlyList<long> Shape, long Begin, long End)
{
    /// <summary>Number of elements (product of the shape; 1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Reads a <c>.safetensors</c> file (8-byte little-endian header length, JSON header, raw data). The file is memory-mapped,
/// so only the tensors that are read are paged in; nothing is copied until a tensor is requested.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _dataOffset;
    private readonly long _length;
    private readonly Dictionary<string, SafetensorsEntry> _entries = new(StringComparer.Ordinal);
    private bool _disposed;

    private SafetensorsFile(string path)
    {
        Path = path;
        _length = new FileInfo(path).Length;
        if (_length < 8)
        {
            throw new InvalidDataException($"{path}: too short for a safetensors file.");
        }

        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;

        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(new ReadOnlySpan<byte>(_base, 8));
        if (headerLength <= 0 || headerLength > _length - 8 || headerLength > 100_000_000)
        {
            Dispose();
            throw new InvalidDataException($"{path}: invalid safetensors header length {headerLength}.");
        }

        _dataOffset = 8 + headerLength;
        try
        {
            ParseHeader(new ReadOnlySpan<byte>(_base + 8, (int)headerLength));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The file this reader maps.</summary>
    public string Path { get; }

    /// <summary>The <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; private set; } = new Dictionary<string, string>();

    /// <summary>All tensor entries by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries => _entries;

    /// <summary>Opens and validates a safetensors file.</summary>
    public static SafetensorsFile Open(string path) => new(path);

    /// <summary>True when the file holds a tensor called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>The header entry of <paramref name="name"/>.</summary>
    public SafetensorsEntry GetEntry(string name) =>
        _entries.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"{Path}: no tensor '{name}'.");

    /// <summary>Copies an F32 tensor into a new array (I32/I64 are converted).</summary>
    public float[] ReadSingle(string name)
    {
        var e = GetEntry(name);
        var result = new float[checked((int)e.ElementCount)];
        ReadSingle(name, result);
        return result;
    }

    /// <summary>Copies a tensor into <paramref name="destination"/> as float32.</summary>
    public void ReadSingle(string name, Span<float> destination)
    {
        var e = GetEntry(name);
        int count = checked((int)e.ElementCount);
        if (destination.Length < count)
        {
            throw new ArgumentException($"Destination too small for '{name}' ({count} elements).", nameof(destination));
        }

        var bytes = Bytes(e);
        switch (e.DType)
        {
            case SafetensorsDType.F32:
                if (BitConverter.IsLittleEndian)
                {
                    MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination);
                }
                else
                {
                    for (int i = 0; i < count; i++)
                    {
                        destination[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]);
                    }
                }

                break;
            case SafetensorsDType.I32:
                for (int i = 0; i < count; i++)
                {
                    destination[i] = BinaryPrimitives.ReadInt32LittleEndian(bytes[(i * 4)..]);
                }

                break;
            default:
                for (int i = 0; i < count; i++)
                {
                    destination[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes[(i * 8)..]);
                }

                break;
        }
    }

    /// <summary>Reads an integer tensor (I32 or I64; F32 values are truncated) as 64-bit integers.</summary>
    public long[] ReadInt64(string name)
    {
        var e = GetEntry(name);
        int count = checked((int)e.ElementCount);
        var bytes = Bytes(e);
        var result = new long[count];
        for (int i = 0; i < count; i++)
        {
            result[i] = e.DType switch
            {
                SafetensorsDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(bytes[(i * 8)..]),
                SafetensorsDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(bytes[(i * 4)..]),
                _ => (long)BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]),
            };
        }

        return result;
    }

    /// <summary>The raw little-endian bytes of a tensor, valid while this reader is not disposed.</summary>
    public ReadOnlySpan<byte> Bytes(SafetensorsEntry entry)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new ReadOnlySpan<byte>(_base + _dataOffset + entry.Begin, checked((int)(entry.End - entry.Begin)));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_base != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
        }

        _view.Dispose();
        _map.Dispose();
    }

    private static int ElementSize(SafetensorsDType t) => t == SafetensorsDType.I64 ? 8 : 4;

    private void ParseHeader(ReadOnlySpan<byte> json)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        long dataLength = _length - _dataOffset;
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                var meta = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var m in prop.Value.EnumerateObject())
                {
                    meta[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                }

                Metadata = meta;
                continue;
            }

            string dtypeText = prop.Value.GetProperty("dtype").GetString() ?? "";
            var dtype = dtypeText switch
            {
                "F32" => SafetensorsDType.F32,
                "I32" => SafetensorsDType.I32,
                "I64" => SafetensorsDType.I64,
                _ => throw new NotSupportedException($"{Path}: tensor '{prop.Name}' has unsupported dtype {dtypeText}."),
            };
            var shape = prop.Value.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            var offsets = prop.Value.GetProperty("data_offsets").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
            {
                throw new InvalidDataException($"{Path}: tensor '{prop.Name}' has invalid data_offsets.");
            }

            var entry = new SafetensorsEntry(prop.Name, dtype, shape, offsets[0], offsets[1]);
            if (entry.ElementCount * ElementSize(dtype) != offsets[1] - offsets[0])
            {
                throw new InvalidDataException($"{Path}: tensor '{prop.Name}' byte length does not match its shape.");
            }

            _entries[prop.Name] = entry;
        }
    }
}
