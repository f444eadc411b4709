using System.Runtime.InteropServices;

namespace ProgrammableFilm.Engine.Diffusion;

/// <summary>
/// A 64-byte aligned float buffer in native memory with zeroed guard zones on both sides, so vector loads that
/// overhang a tensor by less than <see cref="GuardFloats"/> elements (masked afterwards) never fault.
/// </summary>
internal sealed unsafe class NativeBuffer : IDisposable
{
    public const int GuardFloats = 1024;

    private float* _raw;

    public NativeBuffer(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        nuint bytes = (nuint)((length + (2 * GuardFloats)) * sizeof(float));
        _raw = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(_raw, bytes);
        Pointer = _raw + GuardFloats;
    }

    ~NativeBuffer() => Free();

    public float* Pointer { get; private set; }

    public long Length { get; }

    public Span<float> AsSpan() => new(Pointer, checked((int)Length));

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        if (_raw != null)
        {
            NativeMemory.AlignedFree(_raw);
            _raw = null;
            Pointer = null;
        }
    }
}

/// <summary>
/// A non-owning NCHW view: <c>N</c> images of <c>C × H × W</c> floats, image <c>n</c> starting at
/// <c>Data + n * BatchStride</c> (a batch stride larger than <c>C*H*W</c> lets a tensor live inside a concat buffer).
/// A padded view stores each channel as a <c>(H + 2) × (W + 2)</c> plane with a zero border (written once, never
/// touched), which lets a 3x3 convolution read its taps without masks; <see cref="Channel"/> then points at the border corner.
/// </summary>
internal readonly unsafe struct TensorView
{
    public TensorView(float* data, int n, int c, int h, int w, long batchStride = -1, bool padded = false)
    {
        Data = data;
        N = n;
        C = c;
        H = h;
        W = w;
        Padded = padded;
        PlaneStride = padded ? (h + 2) * (w + 2) : h * w;
        BatchStride = batchStride < 0 ? (long)c * PlaneStride : batchStride;
    }

    public float* Data { get; }

    public int N { get; }

    public int C { get; }

    public int H { get; }

    public int W { get; }

    public bool Padded { get; }

    /// <summary>Floats between consecutive channel planes.</summary>
    public int PlaneStride { get; }

    /// <summary>Floats between consecutive rows.</summary>
    public int RowStride => Padded ? W + 2 : W;

    public long BatchStride { get; }

    public int Plane => H * W;

    public float* Image(int n) => Data + (n * BatchStride);

    public float* Channel(int n, int c) => Data + (n * BatchStride) + ((long)c * PlaneStride);

    /// <summary>Element (0, 0) of channel c (inside the border for a padded view).</summary>
    public float* Interior(int n, int c) => Channel(n, c) + (Padded ? W + 3 : 0);

    public TensorView WithBatch(int n) => new(Data, n, C, H, W, BatchStride, Padded);

    /// <summary>Channels [c0, c0 + count) of every image, as a view with the same batch stride.</summary>
    public TensorView Channels(int c0, int count) => new(Data + ((long)c0 * PlaneStride), N, count, H, W, BatchStride, Padded);
}
