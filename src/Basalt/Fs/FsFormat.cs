// On-disk values of the filesystem layer: inodes, dirents, xattrs and the logged-truncate intent,
// and where their keys live. Little-endian at fixed offsets (docs/format.md "Files"); every
// reader validates lengths before it reads a field, so a damaged value is a clear problem, never
// an exception.
//
// Positions (snapshot field uint.MaxValue in the snapshot-aware btrees):
//   inode    inodes      (0, ino)
//   dirent   dirents     (directory ino, name hash slot)   hashed, linear probing
//   xattr    xattrs      (ino, name hash slot)              hashed, linear probing
//   orphan   orphans     (0, ino)                            set key: linked nowhere, still open or being deleted
//   truncate logged_ops  (0, ino, 0)                         intent of a truncate that takes several transactions
using System.Buffers.Binary;
using System.Text;
using Basalt.Format;

namespace Basalt.Fs;

/// <summary>File types as stored in a dirent and in the high bits of a mode (the DT_ numbers of Linux).</summary>
public enum FileType : byte
{
    Unknown = 0,
    Fifo = 1,
    CharDevice = 2,
    Directory = 4,
    BlockDevice = 6,
    Regular = 8,
    Symlink = 10,
    Socket = 12,
}

public static class FileModes
{
    /// <summary>The S_IFMT mask of a mode.</summary>
    public const uint TypeMask = 0xF000;

    /// <summary>Permission bits and set-id/sticky bits (07777).</summary>
    public const uint PermissionMask = 0xFFF;

    public static FileType TypeOf(uint mode) => (FileType)((mode & TypeMask) >> 12);

    public static uint ModeOf(FileType type, uint permissions) => ((uint)type << 12) | (permissions & PermissionMask);

    public static bool IsValidType(FileType type) => type is FileType.Fifo or FileType.CharDevice or FileType.Directory
        or FileType.BlockDevice or FileType.Regular or FileType.Symlink or FileType.Socket;

    public static string ToText(FileType type) => type switch
    {
        FileType.Fifo => "fifo",
        FileType.CharDevice => "char",
        FileType.Directory => "dir",
        FileType.BlockDevice => "block",
        FileType.Regular => "file",
        FileType.Symlink => "symlink",
        FileType.Socket => "socket",
        _ => $"type {(byte)type}",
    };
}

/// <summary>The fixed inode numbers and the key positions of the filesystem's btrees.</summary>
public static class FsPositions
{
    /// <summary>The root directory.</summary>
    public const ulong RootIno = 1;

    /// <summary>lost+found, where fsck puts what it finds unreachable.</summary>
    public const ulong LostAndFoundIno = 2;

    /// <summary>Numbers below this are reserved for the filesystem's own inodes.</summary>
    public const ulong FirstUserIno = 16;

    /// <summary>Slots 0 and 1 of a directory are its "." and ".." for readdir: names hash to 2 and up.</summary>
    public const ulong FirstNameSlot = 2;

    /// <summary>Name slots stay below 2^62 so a probe never wraps.</summary>
    public const ulong SlotMask = (1UL << 62) - 1;

    public static Bpos Inode(ulong ino) => new(0, ino, uint.MaxValue);

    public static Bpos Orphan(ulong ino) => new(0, ino, uint.MaxValue);

    public static Bpos Truncate(ulong ino) => new(0, ino, 0);

    /// <summary>The intent of a reflink into <paramref name="dstIno"/> (one at a time per destination).</summary>
    public static Bpos Reflink(ulong dstIno) => new(1, dstIno, 0);

    public static Bpos Slot(ulong owner, ulong slot) => new(owner, slot, uint.MaxValue);
}

/// <summary>An inode (104 bytes, version 1).</summary>
public record struct InodeValue
{
    public const int SizeOf = 104;
    public const byte CurrentVersion = 1;

    public uint Mode;
    public uint Uid;
    public uint Gid;
    public uint Nlink;
    public uint Generation;
    public ushort Flags;
    public ulong Size;

    /// <summary>Sectors its extents hold (st_blocks in 512-byte units), kept by the extent trigger.</summary>
    public ulong Sectors;

    public long AtimeNs;
    public long MtimeNs;
    public long CtimeNs;
    public long BtimeNs;
    public ulong Rdev;

    /// <summary>Seed of the name hash of a directory's dirents and of every inode's xattrs.</summary>
    public ulong HashSeed;

    /// <summary>Directory holding the dirent that last linked this inode (a directory's parent), 0 when none.</summary>
    public ulong Dir;

    /// <summary>Slot of that dirent in <see cref="Dir"/>.</summary>
    public ulong DirSlot;

    /// <summary>A new inode at time <paramref name="now"/>: random generation and hash seed, link count 2 for a directory, else 1.</summary>
    public static InodeValue Create(uint mode, uint uid, uint gid, long now, ulong dir, ulong dirSlot) => new()
    {
        Mode = mode,
        Uid = uid,
        Gid = gid,
        Nlink = FileModes.TypeOf(mode) == FileType.Directory ? 2u : 1u,
        Generation = (uint)Random.Shared.Next(),
        AtimeNs = now,
        MtimeNs = now,
        CtimeNs = now,
        BtimeNs = now,
        HashSeed = (ulong)Random.Shared.NextInt64(),
        Dir = dir,
        DirSlot = dirSlot,
    };

    public readonly FileType Type => FileModes.TypeOf(Mode);

    public readonly bool IsDirectory => Type == FileType.Directory;

    public readonly byte[] ToBytes()
    {
        var b = new byte[SizeOf];
        b[0] = CurrentVersion;
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2), Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), Mode);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), Uid);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), Gid);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), Nlink);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(20), Generation);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), Size);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(32), Sectors);
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(40), AtimeNs);
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(48), MtimeNs);
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(56), CtimeNs);
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(64), BtimeNs);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(72), Rdev);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(80), HashSeed);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(88), Dir);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(96), DirSlot);
        return b;
    }

    public static bool TryRead(ReadOnlySpan<byte> b, out InodeValue inode, out string? problem)
    {
        inode = default;
        if (b.Length != SizeOf)
        {
            problem = $"inode value of {b.Length} bytes (expected {SizeOf})";
            return false;
        }
        if (b[0] != CurrentVersion)
        {
            problem = $"inode version {b[0]} (this build reads {CurrentVersion})";
            return false;
        }
        inode = new InodeValue
        {
            Flags = BinaryPrimitives.ReadUInt16LittleEndian(b[2..]),
            Mode = BinaryPrimitives.ReadUInt32LittleEndian(b[4..]),
            Uid = BinaryPrimitives.ReadUInt32LittleEndian(b[8..]),
            Gid = BinaryPrimitives.ReadUInt32LittleEndian(b[12..]),
            Nlink = BinaryPrimitives.ReadUInt32LittleEndian(b[16..]),
            Generation = BinaryPrimitives.ReadUInt32LittleEndian(b[20..]),
            Size = BinaryPrimitives.ReadUInt64LittleEndian(b[24..]),
            Sectors = BinaryPrimitives.ReadUInt64LittleEndian(b[32..]),
            AtimeNs = BinaryPrimitives.ReadInt64LittleEndian(b[40..]),
            MtimeNs = BinaryPrimitives.ReadInt64LittleEndian(b[48..]),
            CtimeNs = BinaryPrimitives.ReadInt64LittleEndian(b[56..]),
            BtimeNs = BinaryPrimitives.ReadInt64LittleEndian(b[64..]),
            Rdev = BinaryPrimitives.ReadUInt64LittleEndian(b[72..]),
            HashSeed = BinaryPrimitives.ReadUInt64LittleEndian(b[80..]),
            Dir = BinaryPrimitives.ReadUInt64LittleEndian(b[88..]),
            DirSlot = BinaryPrimitives.ReadUInt64LittleEndian(b[96..]),
        };
        if (!FileModes.IsValidType(inode.Type))
        {
            problem = $"inode mode {Convert.ToString(inode.Mode, 8)} has no valid file type";
            return false;
        }
        problem = null;
        return true;
    }

    public readonly string ToText() =>
        $"{FileModes.ToText(Type)} mode {Convert.ToString(Mode & FileModes.PermissionMask, 8)} uid {Uid} gid {Gid} nlink {Nlink} size {Size} sectors {Sectors} gen {Generation}"
        + (Rdev != 0 ? $" rdev {Rdev >> 32}:{Rdev & 0xFFFFFFFF}" : "") + $" dir {Dir}:{DirSlot}";
}

/// <summary>A directory entry: the target inode, its type and the name (10-byte header, then the name).</summary>
public readonly record struct DirentValue(ulong Target, FileType Type, byte[] Name)
{
    public const int HeaderSize = 10;

    public byte[] ToBytes()
    {
        var b = new byte[HeaderSize + Name.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(b, Target);
        b[8] = (byte)Type;
        b[9] = (byte)Name.Length;
        Name.CopyTo(b.AsSpan(HeaderSize));
        return b;
    }

    /// <summary>The name bytes of an encoded dirent without decoding the rest (empty when malformed).</summary>
    public static ReadOnlySpan<byte> NameOf(ReadOnlySpan<byte> b) =>
        b.Length >= HeaderSize && b.Length == HeaderSize + b[9] ? b[HeaderSize..] : default;

    public static bool TryRead(ReadOnlySpan<byte> b, out DirentValue dirent, out string? problem)
    {
        dirent = default;
        if (!TryReadTarget(b, out var target, out var type, out problem))
            return false;
        dirent = new DirentValue(target, type, b[HeaderSize..].ToArray());
        return true;
    }

    /// <summary>The checks of <see cref="TryRead"/> and the target and type, without copying the name.</summary>
    public static bool TryReadTarget(ReadOnlySpan<byte> b, out ulong target, out FileType type, out string? problem)
    {
        target = 0;
        type = default;
        if (b.Length < HeaderSize + 1 || b.Length != HeaderSize + b[9])
        {
            problem = $"dirent value of {b.Length} bytes does not hold its name";
            return false;
        }
        var name = b[HeaderSize..];
        if (Names.Check(name) is { } bad)
        {
            problem = $"dirent name {Names.ToText(name)}: {bad}";
            return false;
        }
        type = (FileType)b[8];
        if (!FileModes.IsValidType(type))
        {
            problem = $"dirent of {Names.ToText(name)} has file type {b[8]}";
            type = default;
            return false;
        }
        target = BinaryPrimitives.ReadUInt64LittleEndian(b);
        problem = null;
        return true;
    }

    public string ToText() => $"{Names.ToText(Name)} -> {Target} ({FileModes.ToText(Type)})";
}

/// <summary>Namespaces of extended attributes (the prefix of the full name, stored as a number).</summary>
public enum XattrNamespace : byte
{
    User = 1,
    Trusted = 2,
    Security = 3,
}

/// <summary>An extended attribute: namespace, name without its prefix, and value (8-byte header).</summary>
public readonly record struct XattrValue(XattrNamespace Namespace, byte[] Name, byte[] Value)
{
    public const int HeaderSize = 8;

    /// <summary>Largest value Linux accepts (XATTR_SIZE_MAX).</summary>
    public const int MaxValueLength = 65536;

    /// <summary>Largest full name, prefix included (XATTR_NAME_MAX).</summary>
    public const int MaxFullNameLength = 255;

    public byte[] ToBytes()
    {
        var b = new byte[HeaderSize + Name.Length + Value.Length];
        b[0] = (byte)Namespace;
        b[1] = (byte)Name.Length;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), (uint)Value.Length);
        Name.CopyTo(b.AsSpan(HeaderSize));
        Value.CopyTo(b.AsSpan(HeaderSize + Name.Length));
        return b;
    }

    /// <summary>Namespace and name of an encoded xattr without copying the value (false when malformed).</summary>
    public static bool TryReadName(ReadOnlySpan<byte> b, out XattrNamespace ns, out ReadOnlySpan<byte> name)
    {
        ns = default;
        name = default;
        if (b.Length < HeaderSize || b.Length != HeaderSize + b[1] + (long)BinaryPrimitives.ReadUInt32LittleEndian(b[4..]))
            return false;
        ns = (XattrNamespace)b[0];
        name = b.Slice(HeaderSize, b[1]);
        return true;
    }

    public static bool TryRead(ReadOnlySpan<byte> b, out XattrValue xattr, out string? problem)
    {
        xattr = default;
        if (!TryReadName(b, out var ns, out var name))
        {
            problem = $"xattr value of {b.Length} bytes does not hold its name and value";
            return false;
        }
        if (ns is < XattrNamespace.User or > XattrNamespace.Security)
        {
            problem = $"xattr namespace {(byte)ns}";
            return false;
        }
        if (name.IsEmpty || name.Contains((byte)0) || Prefix(ns).Length + name.Length > MaxFullNameLength)
        {
            problem = $"xattr name {Names.ToText(name)} is empty, holds NUL or is too long";
            return false;
        }
        xattr = new XattrValue(ns, name.ToArray(), b[(HeaderSize + name.Length)..].ToArray());
        problem = null;
        return true;
    }

    public static string Prefix(XattrNamespace ns) => ns switch
    {
        XattrNamespace.User => "user.",
        XattrNamespace.Trusted => "trusted.",
        XattrNamespace.Security => "security.",
        _ => "",
    };

    /// <summary>The full name ("user.foo") as bytes.</summary>
    public byte[] FullName()
    {
        var prefix = Encoding.ASCII.GetBytes(Prefix(Namespace));
        return [.. prefix, .. Name];
    }

    public string ToText() => $"{Prefix(Namespace)}{Names.ToText(Name)} = {Value.Length} bytes";
}

/// <summary>The intent of a truncate that takes several transactions: the size being cut to (8 bytes).</summary>
public readonly record struct TruncateIntent(ulong NewSize)
{
    public const int SizeOf = 8;

    public byte[] ToBytes()
    {
        var b = new byte[SizeOf];
        BinaryPrimitives.WriteUInt64LittleEndian(b, NewSize);
        return b;
    }

    public static bool TryRead(ReadOnlySpan<byte> b, out TruncateIntent intent, out string? problem)
    {
        intent = default;
        if (b.Length != SizeOf)
        {
            problem = $"truncate intent of {b.Length} bytes (expected {SizeOf})";
            return false;
        }
        intent = new TruncateIntent(BinaryPrimitives.ReadUInt64LittleEndian(b));
        problem = null;
        return true;
    }
}

/// <summary>
/// The intent of a reflink that takes several transactions (48 bytes): sectors
/// [SrcStart, SrcStart + Sectors) of the source are shared into the destination (the key's inode
/// number) from DstStart; Done sectors are; the destination's size grows to at least DstSize bytes.
/// </summary>
public readonly record struct ReflinkIntent(ulong SrcIno, ulong SrcStart, ulong DstStart, ulong Sectors, ulong Done, ulong DstSize)
{
    public const int SizeOf = 48;

    public byte[] ToBytes()
    {
        var b = new byte[SizeOf];
        BinaryPrimitives.WriteUInt64LittleEndian(b, SrcIno);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), SrcStart);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), DstStart);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), Sectors);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(32), Done);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(40), DstSize);
        return b;
    }

    public static bool TryRead(ReadOnlySpan<byte> b, out ReflinkIntent intent, out string? problem)
    {
        intent = default;
        if (b.Length != SizeOf)
        {
            problem = $"reflink intent of {b.Length} bytes (expected {SizeOf})";
            return false;
        }
        intent = new ReflinkIntent(BinaryPrimitives.ReadUInt64LittleEndian(b), BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(b[16..]), BinaryPrimitives.ReadUInt64LittleEndian(b[24..]),
            BinaryPrimitives.ReadUInt64LittleEndian(b[32..]), BinaryPrimitives.ReadUInt64LittleEndian(b[40..]));
        if (intent.Done > intent.Sectors || intent.SrcStart + intent.Sectors < intent.SrcStart || intent.DstStart + intent.Sectors < intent.DstStart)
        {
            problem = $"reflink intent with {intent.Done} of {intent.Sectors} sectors done from sector {intent.SrcStart} to {intent.DstStart}";
            intent = default;
            return false;
        }
        problem = null;
        return true;
    }

    public string ToText() =>
        $"reflink inode {SrcIno} sectors {SrcStart}..{SrcStart + Sectors} to sector {DstStart} ({Done} done, size at least {DstSize})";
}
