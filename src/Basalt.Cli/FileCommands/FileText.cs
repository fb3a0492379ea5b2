// How the file commands print an inode: the ls(1) mode string, times as ISO 8601 UTC with their
// nanoseconds, device numbers as major:minor, and the JSON record ls --json and stat --json share
// (every inode field, the name as text and as base64, since a name is bytes).
using System.Globalization;
using Basalt.Fs;

namespace Basalt.Cli.FileCommands;

/// <summary>One inode in ls --json and stat --json.</summary>
internal sealed record FileJson(
    string Name,
    string NameBase64,
    string Path,
    ulong Ino,
    uint Generation,
    string Type,
    string Mode,
    string ModeText,
    uint Nlink,
    uint Uid,
    uint Gid,
    ulong Size,
    ulong Blocks,
    long AtimeNs,
    string Atime,
    long MtimeNs,
    string Mtime,
    long CtimeNs,
    string Ctime,
    long BtimeNs,
    string Btime,
    string Rdev,
    string? SymlinkTarget,
    string? SymlinkTargetBase64,
    IReadOnlyList<string>? Xattrs);

/// <summary>ls --json: one listing per directory shown (or per non-directory operand, holding it alone).</summary>
internal sealed record LsJson(string Image, IReadOnlyList<LsListingJson> Listings);

internal sealed record LsListingJson(string Path, bool Directory, IReadOnlyList<FileJson> Entries);

internal sealed record StatJson(string Image, IReadOnlyList<FileJson> Files);

internal static class FileText
{
    /// <summary>"drwxr-xr-x": the type letter and the permission bits with set-id and sticky as ls(1) shows them.</summary>
    public static string ModeString(uint mode)
    {
        var c = new char[10];
        c[0] = FileModes.TypeOf(mode) switch
        {
            FileType.Directory => 'd',
            FileType.Symlink => 'l',
            FileType.Fifo => 'p',
            FileType.CharDevice => 'c',
            FileType.BlockDevice => 'b',
            FileType.Socket => 's',
            FileType.Regular => '-',
            _ => '?',
        };
        for (var who = 0; who < 3; who++)
        {
            var bits = (mode >> (6 - (3 * who))) & 7;
            c[1 + (3 * who)] = (bits & 4) != 0 ? 'r' : '-';
            c[2 + (3 * who)] = (bits & 2) != 0 ? 'w' : '-';
            c[3 + (3 * who)] = (bits & 1) != 0 ? 'x' : '-';
        }
        if ((mode & 0x800) != 0)
            c[3] = c[3] == 'x' ? 's' : 'S';
        if ((mode & 0x400) != 0)
            c[6] = c[6] == 'x' ? 's' : 'S';
        if ((mode & 0x200) != 0)
            c[9] = c[9] == 'x' ? 't' : 'T';
        return new string(c);
    }

    /// <summary>The permission bits in octal, four digits ("0755").</summary>
    public static string OctalMode(uint mode) => Convert.ToString(mode & FileModes.PermissionMask, 8).PadLeft(4, '0');

    /// <summary>"2026-12-07T02:14:13Z" (seconds; ls -l).</summary>
    public static string Seconds(long ns) => Time(ns, fraction: false);

    /// <summary>"2026-12-07T02:14:13.123456789Z" (every nanosecond; stat and JSON).</summary>
    public static string Nanoseconds(long ns) => Time(ns, fraction: true);

    private static string Time(long ns, bool fraction)
    {
        var seconds = Math.DivRem(ns, 1_000_000_000L, out var rest);
        if (rest < 0)
        {
            seconds--;
            rest += 1_000_000_000L;
        }
        var text = DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(seconds, -62135596800L, 253402300799L))
            .UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
        return fraction ? string.Create(CultureInfo.InvariantCulture, $"{text}.{rest:D9}Z") : text + "Z";
    }

    /// <summary>A device number as major:minor (Linux's encoding, as gnu_dev_major/minor split it).</summary>
    public static string Rdev(ulong rdev)
    {
        var major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfffUL);
        var minor = (rdev & 0xff) | ((rdev >> 12) & ~0xffUL);
        return string.Create(CultureInfo.InvariantCulture, $"{major}:{minor}");
    }

    public static FileJson Json(Files files, InodeAttr attr, byte[] name, ImagePath path)
    {
        var i = attr.Inode;
        var target = attr.Type == FileType.Symlink ? files.ReadLink(attr.Ino) : null;
        var xattrs = files.ListXattrs(attr.Ino).Select(x => Names.ToText(x)).ToList();
        return new FileJson(Names.ToText(name), Convert.ToBase64String(name), path.Text, attr.Ino, i.Generation,
            FileModes.ToText(i.Type), OctalMode(i.Mode), ModeString(i.Mode), i.Nlink, i.Uid, i.Gid, i.Size, i.Sectors,
            i.AtimeNs, Nanoseconds(i.AtimeNs), i.MtimeNs, Nanoseconds(i.MtimeNs), i.CtimeNs, Nanoseconds(i.CtimeNs),
            i.BtimeNs, Nanoseconds(i.BtimeNs), Rdev(i.Rdev),
            target is null ? null : Names.ToText(target), target is null ? null : Convert.ToBase64String(target), xattrs);
    }

    /// <summary>Resolves a path, following a symlink at its end when <paramref name="follow"/>; errors name the path.</summary>
    public static InodeAttr Resolve(Files files, ImagePath path, bool follow) =>
        FileErrors.At(path, () => files.ResolvePath(path.Bytes, follow));

    /// <summary>The directory that holds a path's last name, and that name; "/" names no entry (EEXIST: the root always exists).</summary>
    public static (InodeAttr Parent, byte[] Name) Parent(Files files, ImagePath path)
    {
        if (path.IsRoot)
            throw FileErrors.Of(path, Diagnostics.ErrorCode.Exists);
        return FileErrors.At(path, () => files.ResolveParent(path.Bytes));
    }

    /// <summary>The entry a path names without following a symlink at its end, or null when it does not exist (a missing parent throws).</summary>
    public static InodeAttr? TryEntry(Files files, ImagePath path)
    {
        if (path.IsRoot)
            return files.GetAttr(FsPositions.RootIno);
        var (parent, name) = Parent(files, path);
        return FileErrors.At(path, () => files.TryLookup(parent.Ino, name, out var attr) ? attr : (InodeAttr?)null);
    }

    /// <summary>Every entry of a directory but "." and "..", in name order (bytes compared).</summary>
    public static List<DirEntry> Entries(Files files, ulong dir, ImagePath path, CancellationToken cancel)
    {
        var list = new List<DirEntry>();
        long cookie = 2;
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            var page = FileErrors.At(path, () => files.ReadDir(dir, cookie));
            if (page.Count == 0)
                break;
            list.AddRange(page);
            cookie = page[^1].Next;
        }
        list.Sort((a, b) => a.Name.AsSpan().SequenceCompareTo(b.Name));
        return list;
    }
}
