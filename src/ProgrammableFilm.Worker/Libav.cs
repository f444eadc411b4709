using System.Runtime.InteropServices;

namespace ProgrammableFilm.Worker;

/// <summary>
/// The few functions of FFmpeg's libraries the in-process encoder calls, and the field offsets it writes. Offsets are
/// those of the libraries' major versions named here (FFmpeg 5.1, Debian 12's <c>ffmpeg</c> package), read from their
/// headers with <c>offsetof</c>; <see cref="Matches"/> refuses any other version, so a machine with other libraries
/// encodes with the ffmpeg program instead of writing through a wrong offset.
/// </summary>
internal static partial class Libav
{
    private const string Codec = "libavcodec.so.59";
    private const string Format = "libavformat.so.59";
    private const string Util = "libavutil.so.57";
    private const string Scale = "libswscale.so.6";

    public const int PixelFormatYuv420P = 0;
    public const int PixelFormatRgb24 = 2;
    public const int ScaleLanczos = 0x200;
    public const int CodecFlagGlobalHeader = 1 << 22;
    public const int IoFlagWrite = 2;
    public const int ErrorAgain = -11;
    public const int ErrorEndOfFile = -0x20464F45;

    public const int FormatContextPb = 32;
    public const int FormatContextMetadata = 176;
    public const int StreamTimeBase = 16;
    public const int StreamAverageFrameRate = 72;
    public const int StreamCodecParameters = 208;
    public const int CodecContextFlags = 76;
    public const int CodecContextTimeBase = 100;
    public const int CodecContextWidth = 116;
    public const int CodecContextHeight = 120;
    public const int CodecContextPixelFormat = 136;
    public const int CodecContextFrameRate = 712;
    public const int FrameData = 0;
    public const int FrameLinesize = 64;
    public const int FrameWidth = 104;
    public const int FrameHeight = 108;
    public const int FrameFormat = 116;
    public const int FramePts = 136;
    public const int PacketStreamIndex = 36;

    /// <summary>Whether the libraries load and are the major versions whose offsets these are.</summary>
    public static bool Matches(out string reason)
    {
        try
        {
            (string Name, uint Version, uint Major)[] libraries =
            [
                ("libavcodec", avcodec_version(), 59), ("libavformat", avformat_version(), 59),
                ("libavutil", avutil_version(), 57), ("libswscale", swscale_version(), 6),
            ];
            var other = libraries.FirstOrDefault(l => l.Version >> 16 != l.Major);
            reason = other.Name is null ? "" : $"{other.Name} is version {other.Version >> 16}, not {other.Major}";
            return other.Name is null;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            reason = e.Message;
            return false;
        }
    }

    /// <summary>FFmpeg's message for an error code.</summary>
    public static string Describe(int error)
    {
        var buffer = new byte[256];
        return av_strerror(error, buffer, (nuint)buffer.Length) == 0 ? System.Text.Encoding.UTF8.GetString(buffer).TrimEnd('\0') : $"error {error}";
    }

    [LibraryImport(Codec)] internal static partial uint avcodec_version();
    [LibraryImport(Format)] internal static partial uint avformat_version();
    [LibraryImport(Util)] internal static partial uint avutil_version();
    [LibraryImport(Scale)] internal static partial uint swscale_version();
    [LibraryImport(Util)] internal static partial void av_log_set_level(int level);
    [LibraryImport(Util)] internal static partial int av_strerror(int error, [Out] byte[] buffer, nuint size);

    [LibraryImport(Codec, StringMarshalling = StringMarshalling.Utf8)] internal static partial nint avcodec_find_encoder_by_name(string name);
    [LibraryImport(Codec)] internal static partial nint avcodec_alloc_context3(nint codec);
    [LibraryImport(Codec)] internal static partial int avcodec_open2(nint context, nint codec, ref nint options);
    [LibraryImport(Codec)] internal static partial void avcodec_free_context(ref nint context);
    [LibraryImport(Codec)] internal static partial int avcodec_parameters_from_context(nint parameters, nint context);
    [LibraryImport(Codec)] internal static partial int avcodec_send_frame(nint context, nint frame);
    [LibraryImport(Codec)] internal static partial int avcodec_receive_packet(nint context, nint packet);
    [LibraryImport(Codec)] internal static partial nint av_packet_alloc();
    [LibraryImport(Codec)] internal static partial void av_packet_free(ref nint packet);
    [LibraryImport(Codec)] internal static partial void av_packet_rescale_ts(nint packet, Rational from, Rational to);

    [LibraryImport(Format, StringMarshalling = StringMarshalling.Utf8)] internal static partial int avformat_alloc_output_context2(out nint context, nint format, string formatName, string fileName);
    [LibraryImport(Format)] internal static partial nint avformat_new_stream(nint context, nint codec);
    [LibraryImport(Format, StringMarshalling = StringMarshalling.Utf8)] internal static partial int avio_open(nint pb, string url, int flags);
    [LibraryImport(Format)] internal static partial int avio_closep(nint pb);
    [LibraryImport(Format)] internal static partial int avformat_write_header(nint context, ref nint options);
    [LibraryImport(Format)] internal static partial int av_interleaved_write_frame(nint context, nint packet);
    [LibraryImport(Format)] internal static partial int av_write_trailer(nint context);
    [LibraryImport(Format)] internal static partial void avformat_free_context(nint context);

    [LibraryImport(Util)] internal static partial nint av_frame_alloc();
    [LibraryImport(Util)] internal static partial void av_frame_free(ref nint frame);
    [LibraryImport(Util)] internal static partial int av_frame_get_buffer(nint frame, int align);
    [LibraryImport(Util, StringMarshalling = StringMarshalling.Utf8)] internal static partial int av_dict_set(ref nint dictionary, string key, string value, int flags);
    [LibraryImport(Util, StringMarshalling = StringMarshalling.Utf8)] internal static partial int av_dict_set(nint dictionaryField, string key, string value, int flags);
    [LibraryImport(Util)] internal static partial void av_dict_free(ref nint dictionary);

    [LibraryImport(Scale)] internal static partial nint sws_getContext(int sourceWidth, int sourceHeight, int sourceFormat, int width, int height, int format, int flags, nint sourceFilter, nint filter, nint parameters);
    [LibraryImport(Scale)] internal static partial int sws_scale(nint context, nint[] sourceData, int[] sourceStride, int sourceSliceY, int sourceSliceHeight, nint data, nint stride);
    [LibraryImport(Scale)] internal static partial void sws_freeContext(nint context);

    [StructLayout(LayoutKind.Sequential)]
    internal readonly record struct Rational(int Numerator, int Denominator);
}
