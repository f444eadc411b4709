using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace ProgrammableFilm.Engine.Imaging;

/// <summary>
/// Minimal PNG codec for 8-bit images without interlacing: enough for frames, previews and ffmpeg's image2 output,
/// because no imaging library is served to these machines.
/// </summary>
public static class Png
{
    private static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];

    /// <summary>Writes <paramref name="image"/> as an 8-bit RGB PNG. The output depends only on the pixels.</summary>
    public static void Write(RgbImage image, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(stream);
        stream.Write(Signature);

        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, image.Width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], image.Height);
        header[8] = 8; // bit depth
        header[9] = 2; // colour type RGB; compression, filter and interlace methods stay 0
        WriteChunk(stream, "IHDR", header);

        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            var stride = image.Width * 3;
            var filtered = new byte[stride + 1];
            var best = new byte[stride + 1];
            for (var y = 0; y < image.Height; y++)
            {
                var row = image.Pixels.AsSpan(y * stride, stride);
                var previous = y == 0 ? default : image.Pixels.AsSpan((y - 1) * stride, stride);
                ChooseFilter(row, previous, filtered, best);
                zlib.Write(best);
            }
        }

        WriteChunk(stream, "IDAT", compressed.GetBuffer().AsSpan(0, (int)compressed.Length));
        WriteChunk(stream, "IEND", []);
    }

    /// <summary>Writes <paramref name="image"/> to a PNG file.</summary>
    public static void Write(RgbImage image, string path)
    {
        using var file = File.Create(path);
        Write(image, file);
    }

    /// <summary>
    /// Reads an 8-bit PNG (grey, grey+alpha, RGB or RGBA; no palette, no interlace) as RGB. Alpha is dropped, not
    /// composited: frames in this project are opaque, and ffmpeg writes RGBA with alpha 255.
    /// </summary>
    /// <exception cref="InvalidDataException">The stream is not a PNG, a CRC is wrong, or the format is not supported.</exception>
    public static RgbImage Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Span<byte> signature = stackalloc byte[8];
        stream.ReadExactly(signature);
        if (!signature.SequenceEqual(Signature))
        {
            throw new InvalidDataException("Not a PNG file.");
        }

        int width = 0, height = 0, channels = 0;
        using var idat = new MemoryStream();
        Span<byte> lengthAndType = stackalloc byte[8];
        Span<byte> crcBytes = stackalloc byte[4];
        while (true)
        {
            stream.ReadExactly(lengthAndType);
            var length = BinaryPrimitives.ReadInt32BigEndian(lengthAndType);
            if (length < 0)
            {
                throw new InvalidDataException("Corrupt PNG chunk length.");
            }

            var data = new byte[length];
            stream.ReadExactly(data);
            stream.ReadExactly(crcBytes);
            var crc = Crc32.Update(Crc32.Update(Crc32.Initial, lengthAndType[4..]), data) ^ Crc32.Initial;
            if (crc != BinaryPrimitives.ReadUInt32BigEndian(crcBytes))
            {
                throw new InvalidDataException($"PNG chunk {Encoding.ASCII.GetString(lengthAndType[4..])} has a wrong CRC.");
            }

            var type = Encoding.ASCII.GetString(lengthAndType[4..]);
            switch (type)
            {
                case "IHDR":
                    width = BinaryPrimitives.ReadInt32BigEndian(data);
                    height = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(4));
                    channels = ChannelsOf(bitDepth: data[8], colourType: data[9], interlace: data[12]);
                    break;
                case "IDAT":
                    idat.Write(data);
                    break;
                case "IEND":
                    if (channels == 0)
                    {
                        throw new InvalidDataException("PNG without IHDR.");
                    }

                    idat.Position = 0;
                    return Decode(idat, width, height, channels);
                default:
                    // Ancillary chunks (gAMA, pHYs, tEXt ...) do not change 8-bit sample values; skip them.
                    break;
            }
        }
    }

    private static int ChannelsOf(byte bitDepth, byte colourType, byte interlace)
    {
        if (bitDepth != 8 || interlace != 0)
        {
            throw new InvalidDataException($"Only 8-bit non-interlaced PNGs are supported (bit depth {bitDepth}, interlace {interlace}).");
        }

        return colourType switch
        {
            0 => 1,
            2 => 3,
            4 => 2,
            6 => 4,
            _ => throw new InvalidDataException($"PNG colour type {colourType} is not supported."),
        };
    }

    private static RgbImage Decode(Stream compressed, int width, int height, int channels)
    {
        var stride = width * channels;
        var previous = new byte[stride];
        var current = new byte[stride];
        var image = new RgbImage(width, height);
        using var zlib = new ZLibStream(compressed, CompressionMode.Decompress);
        Span<byte> filter = stackalloc byte[1];
        for (var y = 0; y < height; y++)
        {
            zlib.ReadExactly(filter);
            zlib.ReadExactly(current);
            Unfilter(filter[0], current, previous, channels);
            var target = image.Pixels.AsSpan(y * width * 3, width * 3);
            for (var x = 0; x < width; x++)
            {
                var source = x * channels;
                if (channels < 3)
                {
                    target[x * 3] = target[(x * 3) + 1] = target[(x * 3) + 2] = current[source];
                }
                else
                {
                    target[x * 3] = current[source];
                    target[(x * 3) + 1] = current[source + 1];
                    target[(x * 3) + 2] = current[source + 2];
                }
            }

            (previous, current) = (current, previous);
        }

        return image;
    }

    private static void Unfilter(byte filter, Span<byte> row, ReadOnlySpan<byte> previous, int bpp)
    {
        switch (filter)
        {
            case 0:
                break;
            case 1:
                for (var i = bpp; i < row.Length; i++)
                {
                    row[i] += row[i - bpp];
                }

                break;
            case 2:
                for (var i = 0; i < row.Length; i++)
                {
                    row[i] += previous[i];
                }

                break;
            case 3:
                for (var i = 0; i < row.Length; i++)
                {
                    var left = i >= bpp ? row[i - bpp] : 0;
                    row[i] += (byte)((left + previous[i]) >> 1);
                }

                break;
            case 4:
                for (var i = 0; i < row.Length; i++)
                {
                    var left = i >= bpp ? row[i - bpp] : (byte)0;
                    var upLeft = i >= bpp ? previous[i - bpp] : (byte)0;
                    row[i] += Paeth(left, previous[i], upLeft);
                }

                break;
            default:
                throw new InvalidDataException($"Unknown PNG filter type {filter}.");
        }
    }

    /// <summary>Filters a row with each of the five filters and keeps the one with the smallest sum of absolute values (the PNG specification's heuristic).</summary>
    private static void ChooseFilter(ReadOnlySpan<byte> row, ReadOnlySpan<byte> previous, byte[] candidate, byte[] best)
    {
        const int bpp = 3;
        var bestScore = long.MaxValue;
        for (byte filter = 0; filter <= 4; filter++)
        {
            candidate[0] = filter;
            long score = 0;
            for (var i = 0; i < row.Length; i++)
            {
                var left = i >= bpp ? row[i - bpp] : (byte)0;
                var up = previous.IsEmpty ? (byte)0 : previous[i];
                var upLeft = i >= bpp && !previous.IsEmpty ? previous[i - bpp] : (byte)0;
                var predicted = filter switch
                {
                    0 => 0,
                    1 => left,
                    2 => up,
                    3 => (left + up) >> 1,
                    _ => Paeth(left, up, upLeft),
                };
                var value = (byte)(row[i] - predicted);
                candidate[i + 1] = value;
                score += value < 128 ? value : 256 - value;
            }

            if (score < bestScore)
            {
                bestScore = score;
                candidate.CopyTo(best, 0);
            }
        }
    }

    private static byte Paeth(byte a, byte b, byte c)
    {
        var p = a + b - c;
        var pa = Math.Abs(p - a);
        var pb = Math.Abs(p - b);
        var pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    private static void WriteChunk(Stream stream, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> buffer = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(buffer, data.Length);
        Encoding.ASCII.GetBytes(type, buffer[4..]);
        stream.Write(buffer);
        stream.Write(data);
        var crc = Crc32.Update(Crc32.Update(Crc32.Initial, buffer[4..]), data) ^ Crc32.Initial;
        BinaryPrimitives.WriteUInt32BigEndian(buffer, crc);
        stream.Write(buffer[..4]);
    }

    /// <summary>The CRC-32 of PNG chunks (ISO-HDLC polynomial), because System.IO.Hashing is a separate package.</summary>
    private static class Crc32
    {
        public const uint Initial = 0xFFFFFFFFu;

        private static readonly uint[] Table = BuildTable();

        public static uint Update(uint crc, ReadOnlySpan<byte> data)
        {
            foreach (var b in data)
            {
                crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
            }

            return crc;
        }

        private static uint[] BuildTable()
        {
            var table = new uint[256];
            for (uint n = 0; n < 256; n++)
            {
                var c = n;
                for (var k = 0; k < 8; k++)
                {
                    c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                }

                table[n] = c;
            }

            return table;
        }
    }
}
