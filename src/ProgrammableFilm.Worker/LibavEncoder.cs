using System.Runtime.InteropServices;
using ProgrammableFilm.Engine;
using static ProgrammableFilm.Worker.Libav;

namespace ProgrammableFilm.Worker;

/// <summary>
/// Encodes frames already in memory into an H.264 MP4 through FFmpeg's libraries loaded once into the worker, with
/// the settings the ffmpeg program is given (<see cref="FfmpegAssembler"/>): lanczos scaling to the shot's size,
/// yuv420p, libx264 veryfast at CRF 18, faststart and the shot's tags. Starting the ffmpeg program costs about 0.1 s
/// of CPU (its dynamic linker binds some 200 libraries), several times what encoding a preview shot's frames takes:
/// with a shot's assembly at the end of every shot, that start-up was a tenth to a fifth of a diffusion batch's
/// device time (docs/performance.md, sessions 17 and 18).
/// </summary>
public static class LibavEncoder
{
    /// <summary>FFmpeg's <c>AV_LOG_ERROR</c>: the libraries would otherwise print libx264's statistics for every shot.</summary>
    private const int LogErrorsOnly = 16;

    private static readonly Lazy<(bool Available, string Reason)> Availability = new(() =>
    {
        if (!Matches(out var reason))
        {
            return (false, reason);
        }

        av_log_set_level(LogErrorsOnly);
        return (true, "");
    });

    /// <summary>Whether this machine's FFmpeg libraries are the ones this encoder was written against.</summary>
    public static bool IsAvailable => Availability.Value.Available;

    /// <summary>Why <see cref="IsAvailable"/> is false.</summary>
    public static string UnavailableReason => Availability.Value.Reason;

    /// <summary>Writes <paramref name="frames"/> at <paramref name="fps"/> as an MP4 of <paramref name="width"/>×<paramref name="height"/> at <paramref name="path"/>.</summary>
    /// <exception cref="AssemblyException">A library call failed; the message is FFmpeg's.</exception>
    public static void Encode(IReadOnlyList<RgbImage> frames, int fps, int width, int height, IReadOnlyDictionary<string, string> metadata, string path, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfZero(frames.Count);
        nint format = 0, codecContext = 0, packet = 0, frame = 0, scaler = 0;
        var opened = false;
        try
        {
            Check(avformat_alloc_output_context2(out format, 0, "mp4", path), "allocating the MP4 muxer");
            var codec = avcodec_find_encoder_by_name("libx264");
            if (codec == 0)
            {
                throw new AssemblyException("this machine's libavcodec has no libx264 encoder");
            }

            var stream = avformat_new_stream(format, 0);
            codecContext = avcodec_alloc_context3(codec);
            packet = av_packet_alloc();
            if (stream == 0 || codecContext == 0 || packet == 0)
            {
                throw new AssemblyException("FFmpeg could not allocate the encoder");
            }

            var timeBase = new Rational(1, fps);
            var frameRate = new Rational(fps, 1);
            Marshal.WriteInt32(codecContext, CodecContextWidth, width);
            Marshal.WriteInt32(codecContext, CodecContextHeight, height);
            Marshal.WriteInt32(codecContext, CodecContextPixelFormat, PixelFormatYuv420P);
            Marshal.StructureToPtr(timeBase, codecContext + CodecContextTimeBase, false);
            Marshal.StructureToPtr(frameRate, codecContext + CodecContextFrameRate, false);
            // MP4 keeps the stream's parameter sets in its header, not in the first frame.
            Marshal.WriteInt32(codecContext, CodecContextFlags, Marshal.ReadInt32(codecContext, CodecContextFlags) | CodecFlagGlobalHeader);
            nint codecOptions = 0;
            av_dict_set(ref codecOptions, "preset", "veryfast", 0);
            av_dict_set(ref codecOptions, "crf", "18", 0);
            var openResult = avcodec_open2(codecContext, codec, ref codecOptions);
            av_dict_free(ref codecOptions);
            Check(openResult, "opening libx264");

            Marshal.StructureToPtr(timeBase, stream + StreamTimeBase, false);
            Marshal.StructureToPtr(frameRate, stream + StreamAverageFrameRate, false);
            Check(avcodec_parameters_from_context(Marshal.ReadIntPtr(stream, StreamCodecParameters), codecContext), "copying the encoder's parameters");
            foreach (var (key, value) in metadata)
            {
                Check(av_dict_set(format + FormatContextMetadata, key, value, 0), $"tagging {key}");
            }

            Check(avio_open(format + FormatContextPb, path, IoFlagWrite), $"opening {path}");
            opened = true;
            nint muxerOptions = 0;
            av_dict_set(ref muxerOptions, "movflags", "+faststart+use_metadata_tags", 0);
            var headerResult = avformat_write_header(format, ref muxerOptions);
            av_dict_free(ref muxerOptions);
            Check(headerResult, "writing the MP4 header");
            var streamTimeBase = Marshal.PtrToStructure<Rational>(stream + StreamTimeBase);

            var source = frames[0];
            scaler = sws_getContext(source.Width, source.Height, PixelFormatRgb24, width, height, PixelFormatYuv420P, ScaleLanczos, 0, 0, 0);
            if (scaler == 0)
            {
                throw new AssemblyException($"FFmpeg cannot scale {source.Width}x{source.Height} to {width}x{height}");
            }

            for (var index = 0; index < frames.Count; index++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var image = frames[index];
                if (image.Width != source.Width || image.Height != source.Height)
                {
                    throw new AssemblyException($"frame {index} is {image.Width}x{image.Height}, the shot's first frame {source.Width}x{source.Height}");
                }

                frame = av_frame_alloc();
                Marshal.WriteInt32(frame, FrameWidth, width);
                Marshal.WriteInt32(frame, FrameHeight, height);
                Marshal.WriteInt32(frame, FrameFormat, PixelFormatYuv420P);
                Marshal.WriteInt64(frame, FramePts, index);
                Check(av_frame_get_buffer(frame, 0), "allocating a frame");
                var pixels = GCHandle.Alloc(image.Pixels, GCHandleType.Pinned);
                try
                {
                    sws_scale(scaler, [pixels.AddrOfPinnedObject(), 0, 0, 0], [image.Width * 3, 0, 0, 0], 0, image.Height, frame + FrameData, frame + FrameLinesize);
                }
                finally
                {
                    pixels.Free();
                }

                Check(avcodec_send_frame(codecContext, frame), $"encoding frame {index}");
                av_frame_free(ref frame);
                WritePackets(format, codecContext, packet, timeBase, streamTimeBase);
            }

            Check(avcodec_send_frame(codecContext, 0), "flushing the encoder");
            WritePackets(format, codecContext, packet, timeBase, streamTimeBase);
            Check(av_write_trailer(format), "finishing the MP4");
        }
        finally
        {
            av_frame_free(ref frame);
            sws_freeContext(scaler);
            av_packet_free(ref packet);
            avcodec_free_context(ref codecContext);
            if (opened)
            {
                avio_closep(format + FormatContextPb);
            }

            avformat_free_context(format);
        }
    }

    private static void WritePackets(nint format, nint codecContext, nint packet, Rational codecTimeBase, Rational streamTimeBase)
    {
        while (true)
        {
            var received = avcodec_receive_packet(codecContext, packet);
            if (received is ErrorAgain or ErrorEndOfFile)
            {
                return;
            }

            Check(received, "receiving a packet");
            av_packet_rescale_ts(packet, codecTimeBase, streamTimeBase);
            Marshal.WriteInt32(packet, PacketStreamIndex, 0);
            Check(av_interleaved_write_frame(format, packet), "writing a packet");
        }
    }

    private static void Check(int result, string what)
    {
        if (result < 0)
        {
            throw new AssemblyException($"FFmpeg failed {what}: {Describe(result)}");
        }
    }
}
