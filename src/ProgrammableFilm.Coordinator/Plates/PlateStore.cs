using System.Buffers.Binary;
using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore;
using ProgrammableFilm.Data;
using ProgrammableFilm.Data.Entities;
using ProgrammableFilm.Domain.Specs;
using ProgrammableFilm.Storage;

namespace ProgrammableFilm.Coordinator.Plates;

/// <summary>One uploaded file of a plate: the request field it came in, its name, its bytes.</summary>
public sealed record PlateFile(string Field, string FileName, Stream Content);

/// <summary>A plate as the API and the CLI show it.</summary>
public sealed record PlateInfo(Guid Id, string Project, string Sha256, string MediaType, IReadOnlyList<string> FileNames, long Bytes, int FrameCount, int Width, int Height, string UploadedBy, DateTime UploadedAt, DateTime? DeletedAt);

public enum PlateDeletion
{
    Deleted,
    NotFound,
    InUse,
}

/// <summary>An upload that cannot be a plate; <see cref="Field"/> names the request field at fault.</summary>
public sealed class PlateRejectedException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

/// <summary>
/// Takes camera plates in: one MP4, or a sequence of PNG or JPEG images (one frame each, in upload order). The bytes
/// are counted against <see cref="CoordinatorOptions.PlateMaxBytes"/> and hashed as they arrive, recognised by their
/// first bytes (not by name or declared type), decoded by ffmpeg into RGB PNG frames, checked to be one size, and only
/// then moved into place and recorded: a rejected upload leaves no file and no row.
/// </summary>
public sealed class PlateStore(IDbContextFactory<FarmDbContext> contextFactory, ShotStorage storage, CoordinatorOptions options, TimeProvider time)
{
    /// <param name="uploads">The files in frame order; each is read to its end before the next is asked for (a multipart request streams them so).</param>
    public async Task<PlateInfo> IngestAsync(string project, IAsyncEnumerable<PlateFile> uploads, string uploadedBy, Guid? uploadedByKeyId, CancellationToken cancellationToken)
    {
        var id = Guid.CreateVersion7();
        var incoming = $"plates/incoming-{id:N}";
        var folder = ShotStorage.PlateFolder(id);
        Directory.CreateDirectory(storage.FullPath($"{incoming}/frames"));
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var files = new List<PlateFile>();
            var kinds = new List<string>();
            long bytes = 0;
            await foreach (var file in uploads.WithCancellation(cancellationToken))
            {
                if (files.Count == SpecLimits.MaxFramesPerShot)
                {
                    throw new PlateRejectedException(file.Field, $"a plate holds at most {SpecLimits.MaxFramesPerShot} frames");
                }

                var upload = storage.FullPath($"{incoming}/{files.Count:D5}.upload");
                bytes = await ReceiveAsync(file, upload, hash, bytes, cancellationToken);
                kinds.Add(Sniff(file, upload));
                files.Add(file);
            }

            if (files.Count == 0)
            {
                throw new PlateRejectedException("file", "is required: one MP4, or one or more PNG or JPEG frames");
            }

            var mediaType = kinds[0];
            if (mediaType == "video/mp4" && files.Count > 1)
            {
                throw new PlateRejectedException(files[1].Field, "a plate is one MP4 or a sequence of images, not both or several videos");
            }

            if (kinds.Select((kind, index) => (kind, index)).FirstOrDefault(k => k.kind == "video/mp4" && k.index > 0) is { kind: not null } video)
            {
                throw new PlateRejectedException(files[video.index].Field, "a plate is one MP4 or a sequence of images, not both");
            }

            var frames = await DecodeAsync(files, incoming, mediaType == "video/mp4", cancellationToken);
            var (width, height) = await CheckSizesAsync(files, incoming, frames, mediaType == "video/mp4", cancellationToken);
            Directory.Move(storage.FullPath($"{incoming}/frames"), storage.FullPath(folder));
            var plate = new Plate
            {
                Id = id,
                Project = project,
                Sha256 = Convert.ToHexStringLower(hash.GetHashAndReset()),
                MediaType = kinds.Distinct(StringComparer.Ordinal).Count() == 1 ? mediaType : "image/*",
                FileNames = string.Join('\n', files.Select(f => Path.GetFileName(f.FileName))),
                Bytes = bytes,
                FrameCount = frames,
                Width = width,
                Height = height,
                UploadedBy = uploadedBy,
                UploadedByKeyId = uploadedByKeyId,
                UploadedAt = time.GetUtcNow().UtcDateTime,
                Folder = folder,
            };
            try
            {
                await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
                db.Plates.Add(plate);
                await db.SaveChangesAsync(cancellationToken);
            }
            catch
            {
                Directory.Delete(storage.FullPath(folder), recursive: true);
                throw;
            }

            return ToInfo(plate);
        }
        finally
        {
            Directory.Delete(storage.FullPath(incoming), recursive: true);
        }
    }

    public async Task<PlateInfo?> FindAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var plate = await db.Plates.AsNoTracking().SingleOrDefaultAsync(p => p.Id == id, cancellationToken);
        return plate is null ? null : ToInfo(plate);
    }

    /// <summary>
    /// Deletes a plate's frames unless a queued or running shot starts from it (the names of up to five are given
    /// back). The row stays, marked deleted: manifests keep naming the plate, and a spec naming it is refused. Deleting
    /// again deletes what a process that died between the commit and the files left behind.
    /// </summary>
    public async Task<(PlateDeletion Outcome, IReadOnlyList<string> UsedBy)> DeleteAsync(string project, Guid id, CancellationToken cancellationToken)
    {
        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var plate = await db.Plates.SingleOrDefaultAsync(p => p.Id == id && p.Project == project, cancellationToken);
        if (plate is null)
        {
            return (PlateDeletion.NotFound, []);
        }

        var usedBy = await db.Shots.Where(s => s.PlateId == id && (s.State == ShotState.Queued || s.State == ShotState.Running)).OrderBy(s => s.Name).Select(s => s.Name).Take(5).ToListAsync(cancellationToken);
        if (usedBy.Count > 0)
        {
            return (PlateDeletion.InUse, usedBy);
        }

        plate.DeletedAt ??= time.GetUtcNow().UtcDateTime;
        await db.SaveChangesAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        storage.DeleteFolder(plate.Folder);
        return (PlateDeletion.Deleted, []);
    }

    /// <summary>
    /// Removes plates ingested for a submission that was then refused, rows and frames, so that a refused spec leaves
    /// nothing behind (<c>pfilm render</c> ingests a spec's plate paths before the submission can check them against
    /// their shots). A plate some shot already names is kept: its manifest needs it.
    /// </summary>
    public async Task DiscardAsync(IReadOnlyCollection<Guid> ids, CancellationToken cancellationToken)
    {
        if (ids.Count == 0)
        {
            return;
        }

        await using var db = await contextFactory.CreateDbContextAsync(cancellationToken);
        var unused = await db.Plates.Where(p => ids.Contains(p.Id) && !db.Shots.Any(s => s.PlateId == p.Id)).ToListAsync(cancellationToken);
        db.Plates.RemoveRange(unused);
        await db.SaveChangesAsync(cancellationToken);
        foreach (var plate in unused)
        {
            storage.DeleteFolder(plate.Folder);
        }
    }

    public static PlateInfo ToInfo(Plate plate) => new(plate.Id, plate.Project, plate.Sha256, plate.MediaType, plate.FileNames.Split('\n'), plate.Bytes, plate.FrameCount, plate.Width, plate.Height, plate.UploadedBy, plate.UploadedAt, plate.DeletedAt);

    private async Task<long> ReceiveAsync(PlateFile file, string path, IncrementalHash hash, long received, CancellationToken cancellationToken)
    {
        var buffer = new byte[81920];
        await using var target = File.Create(path);
        int read;
        while ((read = await file.Content.ReadAsync(buffer, cancellationToken)) > 0)
        {
            received += read;
            if (received > options.PlateMaxBytes)
            {
                throw new PlateRejectedException(file.Field, $"the plate is over the limit of {options.PlateMaxBytes} bytes");
            }

            hash.AppendData(buffer, 0, read);
            await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }

        return received;
    }

    /// <summary>What the bytes are: the PNG and JPEG signatures, or an ISO base media file's <c>ftyp</c> box.</summary>
    private static string Sniff(PlateFile file, string path)
    {
        Span<byte> head = stackalloc byte[12];
        using (var stream = File.OpenRead(path))
        {
            head = head[..stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)];
        }

        if (head.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]))
        {
            return "image/png";
        }

        if (head.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]))
        {
            return "image/jpeg";
        }

        if (head.Length >= 8 && head[4..8].SequenceEqual("ftyp"u8))
        {
            return "video/mp4";
        }

        throw new PlateRejectedException(file.Field, $"'{Path.GetFileName(file.FileName)}' is not a PNG or JPEG image or an MP4 video");
    }

    /// <summary>Decodes every upload into RGB PNG frames numbered from 0; returns how many.</summary>
    private async Task<int> DecodeAsync(IReadOnlyList<PlateFile> files, string incoming, bool video, CancellationToken cancellationToken)
    {
        var frames = storage.FullPath($"{incoming}/frames");
        if (video)
        {
            await FfmpegAsync(files[0], ["-i", storage.FullPath($"{incoming}/00000.upload"), "-frames:v", SpecLimits.MaxFramesPerShot.ToString(System.Globalization.CultureInfo.InvariantCulture), "-pix_fmt", "rgb24", "-start_number", "0", $"{frames}/%05d.png"], cancellationToken);
            var count = Directory.GetFiles(frames, "*.png").Length;
            return count > 0 ? count : throw new PlateRejectedException(files[0].Field, $"'{Path.GetFileName(files[0].FileName)}' holds no video frames");
        }

        for (var i = 0; i < files.Count; i++)
        {
            await FfmpegAsync(files[i], ["-i", storage.FullPath($"{incoming}/{i:D5}.upload"), "-frames:v", "1", "-pix_fmt", "rgb24", $"{frames}/{i:D5}.png"], cancellationToken);
        }

        return files.Count;
    }

    /// <summary>Every frame the size of the first; read from the PNG header (IHDR), which ffmpeg writes first.</summary>
    private async Task<(int Width, int Height)> CheckSizesAsync(IReadOnlyList<PlateFile> files, string incoming, int frames, bool video, CancellationToken cancellationToken)
    {
        (int, int) first = default;
        for (var i = 0; i < frames; i++)
        {
            var header = new byte[24];
            await using (var stream = File.OpenRead(storage.FullPath($"{incoming}/frames/{i:D5}.png")))
            {
                await stream.ReadExactlyAsync(header, cancellationToken);
            }

            var size = (BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(20)));
            if (i == 0)
            {
                first = size;
            }
            else if (size != first)
            {
                var file = video ? files[0] : files[i];
                throw new PlateRejectedException(file.Field, $"'{Path.GetFileName(file.FileName)}' is {size.Item1}x{size.Item2}; the plate's first frame is {first.Item1}x{first.Item2}: every frame must be one size");
            }
        }

        return first;
    }

    private async Task FfmpegAsync(PlateFile file, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var result = await Ffmpeg.RunAsync(options.FfmpegPath, ["-nostdin", "-y", "-v", "error", .. arguments], cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new PlateRejectedException(file.Field, $"'{Path.GetFileName(file.FileName)}' could not be decoded: {result.Reason}");
        }
    }
}
