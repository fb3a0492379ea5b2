// Extended attributes: user., trusted. and security. names, hashed per inode like dirents.
using System.Text;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Transactions;

namespace Basalt.Fs;

public sealed partial class Files
{
    private static (XattrNamespace Ns, byte[] Name) SplitXattrName(ReadOnlySpan<byte> fullName)
    {
        if (fullName.Length > XattrValue.MaxFullNameLength)
            BasaltException.Throw(ErrorCode.NameTooLong, $"xattr name of {fullName.Length} bytes (at most {XattrValue.MaxFullNameLength})");
        foreach (var ns in new[] { XattrNamespace.User, XattrNamespace.Trusted, XattrNamespace.Security })
        {
            var prefix = Encoding.ASCII.GetBytes(XattrValue.Prefix(ns));
            if (fullName.StartsWith(prefix))
            {
                var name = fullName[prefix.Length..];
                if (name.IsEmpty || name.Contains((byte)0))
                    BasaltException.Throw(ErrorCode.InvalidArgument, $"xattr name '{Names.ToText(fullName)}' has an empty name or a NUL");
                return (ns, name.ToArray());
            }
        }
        throw new BasaltException(ErrorCode.NotSupported, $"xattr '{Names.ToText(fullName)}': only the user., trusted. and security. namespaces are supported");
    }

    private static Func<byte[], bool> XattrIs(XattrNamespace ns, byte[] name) => value =>
        XattrValue.TryReadName(value, out var n, out var stored) && n == ns && stored.SequenceEqual(name);

    private static ProbeResult FindXattr(Transaction t, ulong ino, in InodeValue inode, XattrNamespace ns, byte[] name) =>
        HashedSlots.Find(HashedSlots.Of(t, BtreeId.Xattrs), ino, Names.SlotOf(inode.HashSeed, ns, name), KeyType.Xattr, XattrIs(ns, name));

    /// <summary>The value of xattr <paramref name="fullName"/> ("user.foo"); ENODATA when absent.</summary>
    public byte[] GetXattr(ulong ino, ReadOnlySpan<byte> fullName) =>
        TryGetXattr(ino, fullName, out var value) ? value
            : throw new BasaltException(ErrorCode.NoData, $"inode {ino} has no xattr '{Names.ToText(fullName)}'");

    public bool TryGetXattr(ulong ino, ReadOnlySpan<byte> fullName, out byte[] value)
    {
        value = [];
        var inode = GetAttr(ino).Inode;
        var (ns, name) = SplitXattrName(fullName);
        var probe = HashedSlots.Find(HashedSlots.Of(_engine[BtreeId.Xattrs]), ino, Names.SlotOf(inode.HashSeed, ns, name),
            KeyType.Xattr, XattrIs(ns, name));
        if (!probe.Found)
            return false;
        if (!XattrValue.TryRead(probe.Value, out var xattr, out var problem))
            BasaltException.Throw(ErrorCode.IoError, $"xattr '{Names.ToText(fullName)}' of inode {ino} is damaged ({problem}); run fsck");
        value = xattr.Value;
        return true;
    }

    /// <summary>Sets xattr <paramref name="fullName"/>; values up to 64 KiB (less with small btree nodes: ENOSPC).</summary>
    public void SetXattr(ulong ino, ReadOnlySpan<byte> fullName, ReadOnlySpan<byte> value, XattrSetMode mode = XattrSetMode.Any)
    {
        var (ns, name) = SplitXattrName(fullName);
        if (value.Length > XattrValue.MaxValueLength)
            BasaltException.Throw(ErrorCode.ValueTooLarge, $"xattr value of {value.Length} bytes (at most {XattrValue.MaxValueLength})");
        var encoded = new XattrValue(ns, name, value.ToArray()).ToBytes();
        var limit = Math.Min(_engine.MaxValueBytes, _journal.MaxCommitBytes - 1024);
        if (encoded.Length > limit)
            BasaltException.Throw(ErrorCode.DeviceFull,
                $"xattr value of {value.Length} bytes does not fit this filesystem's btree nodes and journal (at most {limit - XattrValue.HeaderSize - name.Length})");
        var full = fullName.ToArray();
        var now = Now();
        Writer.Transact(t =>
        {
            var inode = ReadInode(t, ino);
            var probe = FindXattr(t, ino, inode, ns, name);
            if (probe.Found && mode == XattrSetMode.Create)
                BasaltException.Throw(ErrorCode.Exists, $"inode {ino} already has xattr '{Names.ToText(full)}'");
            if (!probe.Found && mode == XattrSetMode.Replace)
                BasaltException.Throw(ErrorCode.NoData, $"inode {ino} has no xattr '{Names.ToText(full)}'");
            t.Set(BtreeId.Xattrs, new Bkey(FsPositions.Slot(ino, probe.Slot), KeyType.Xattr), encoded);
            inode.CtimeNs = now;
            PutInode(t, ino, inode);
        });
    }

    /// <summary>Removes xattr <paramref name="fullName"/>; ENODATA when absent.</summary>
    public void RemoveXattr(ulong ino, ReadOnlySpan<byte> fullName)
    {
        var (ns, name) = SplitXattrName(fullName);
        var full = fullName.ToArray();
        var now = Now();
        Writer.Transact(t =>
        {
            var inode = ReadInode(t, ino);
            var probe = FindXattr(t, ino, inode, ns, name);
            if (!probe.Found)
                BasaltException.Throw(ErrorCode.NoData, $"inode {ino} has no xattr '{Names.ToText(full)}'");
            HashedSlots.Remove(t, BtreeId.Xattrs, ino, probe.Slot);
            inode.CtimeNs = now;
            PutInode(t, ino, inode);
        });
    }

    /// <summary>The full names of every xattr of <paramref name="ino"/>.</summary>
    public List<byte[]> ListXattrs(ulong ino)
    {
        _ = GetAttr(ino);
        var names = new List<byte[]>();
        var it = _engine[BtreeId.Xattrs].Iterate(FsPositions.Slot(ino, 0), FsPositions.Slot(ino, ulong.MaxValue));
        while (it.MoveNext())
        {
            if (it.Key.Type != KeyType.Xattr)
                continue;
            if (!XattrValue.TryRead(it.Value, out var xattr, out var problem))
                BasaltException.Throw(ErrorCode.IoError, $"an xattr of inode {ino} is damaged ({problem}); run fsck");
            names.Add(xattr.FullName());
        }
        return names;
    }
}
