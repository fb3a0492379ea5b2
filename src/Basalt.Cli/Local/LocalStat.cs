// What LocalFs reports about local files: statx's answer in plain units (times in nanoseconds
// since the epoch, device numbers combined the way glibc's makedev does) and directory entries.
namespace Basalt.Cli.Local;

/// <summary>The file type bits of st_mode (S_IFMT), with their Linux values.</summary>
internal enum LocalFileType
{
    Unknown = 0,
    Fifo = 0x1000,
    CharDevice = 0x2000,
    Directory = 0x4000,
    BlockDevice = 0x6000,
    Regular = 0x8000,
    Symlink = 0xA000,
    Socket = 0xC000,
}

/// <summary>One file's statx result.</summary>
internal readonly record struct LocalStat(
    uint Mode,
    uint Uid,
    uint Gid,
    uint Nlink,
    ulong Ino,
    ulong Dev,
    ulong Rdev,
    long Size,
    long Blocks,
    int BlockSize,
    long AtimeNs,
    long MtimeNs,
    long CtimeNs,
    long BtimeNs,
    bool HasBtime)
{
    public const uint TypeMask = 0xF000;

    /// <summary>Permission bits with set-user-id, set-group-id and sticky (mode &amp; 07777).</summary>
    public uint Permissions => Mode & 0xFFF;

    public LocalFileType Type => (LocalFileType)(Mode & TypeMask) switch
    {
        LocalFileType.Fifo or LocalFileType.CharDevice or LocalFileType.Directory or LocalFileType.BlockDevice
            or LocalFileType.Regular or LocalFileType.Symlink or LocalFileType.Socket => (LocalFileType)(Mode & TypeMask),
        _ => LocalFileType.Unknown,
    };

    internal static LocalStat From(in LocalLibC.StatxBuffer s) => new(
        Mode: s.Mode,
        Uid: s.Uid,
        Gid: s.Gid,
        Nlink: s.Nlink,
        Ino: s.Ino,
        Dev: LocalFs.MakeDev(s.DevMajor, s.DevMinor),
        Rdev: LocalFs.MakeDev(s.RdevMajor, s.RdevMinor),
        Size: (long)s.Size,
        Blocks: (long)s.Blocks,
        BlockSize: (int)s.BlockSize,
        AtimeNs: Nanoseconds(s.Atime),
        MtimeNs: Nanoseconds(s.Mtime),
        CtimeNs: Nanoseconds(s.Ctime),
        BtimeNs: (s.Mask & LocalLibC.StatxBtime) != 0 ? Nanoseconds(s.Btime) : 0,
        HasBtime: (s.Mask & LocalLibC.StatxBtime) != 0);

    // A long holds ±292 years around 1970 in nanoseconds; a time outside saturates rather than wraps.
    private static long Nanoseconds(in LocalLibC.StatxTimestamp t)
    {
        const long PerSecond = 1_000_000_000;
        if (t.Seconds > (long.MaxValue - PerSecond) / PerSecond)
            return long.MaxValue;
        if (t.Seconds < long.MinValue / PerSecond)
            return long.MinValue;
        return (t.Seconds * PerSecond) + t.Nanoseconds;
    }
}

/// <summary>One directory entry as getdents64 gives it; Type is d_type (DT_UNKNOWN = 0 when the filesystem does not say).</summary>
internal readonly record struct LocalDirEntry(byte[] Name, ulong Ino, byte Type)
{
    /// <summary>d_type as a file type: DT_* is S_IF* shifted right by 12 on Linux.</summary>
    public LocalFileType FileType => Type is 1 or 2 or 4 or 6 or 8 or 10 or 12 ? (LocalFileType)(Type << 12) : LocalFileType.Unknown;
}
