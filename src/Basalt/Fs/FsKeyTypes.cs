// The key types of the filesystem layer (inode, dirent, xattr, hash whiteout, truncate intent):
// validators and printers, registered in the btree's key-type table at start-up.
using Basalt.Btree;
using Basalt.Data;
using Basalt.Format;

namespace Basalt.Fs;

public static class FsKeyTypes
{
    private static readonly Lazy<bool> s_registration = new(() =>
    {
        DataKeyTypes.Register();
        KeyTypeTable.Register(KeyType.Inode, new KeyTypeBehaviour(ValidateInode, Print<InodeValue>(InodeValue.TryRead, v => v.ToText())));
        KeyTypeTable.Register(KeyType.Dirent, new KeyTypeBehaviour(ValidateDirent, Print<DirentValue>(DirentValue.TryRead, v => v.ToText())));
        KeyTypeTable.Register(KeyType.Xattr, new KeyTypeBehaviour(ValidateXattr, Print<XattrValue>(XattrValue.TryRead, v => v.ToText())));
        KeyTypeTable.Register(KeyType.HashWhiteout, new KeyTypeBehaviour(KeyTypeTable.ValidateEmpty, _ => "hash whiteout"));
        KeyTypeTable.Register(KeyType.LoggedOpTruncate,
            new KeyTypeBehaviour(ValidateTruncate, Print<TruncateIntent>(TruncateIntent.TryRead, v => $"truncate to {v.NewSize}")));
        KeyTypeTable.Register(KeyType.LoggedOpReflink,
            new KeyTypeBehaviour(ValidateReflink, Print<ReflinkIntent>(ReflinkIntent.TryRead, v => v.ToText())));
        return true;
    });

    /// <summary>Registers the behaviour of every filesystem key type (once).</summary>
    public static void Register() => _ = s_registration.Value;

    private delegate bool Reader<T>(ReadOnlySpan<byte> value, out T decoded, out string? problem);

    private static KeyValuePrinter Print<T>(Reader<T> read, Func<T, string> text) =>
        value => read(value, out var decoded, out var problem) ? text(decoded) : $"invalid: {problem}";

    private static bool ValidateInode(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        if (!InodeValue.TryRead(value, out _, out problem))
            return false;
        if (context.Key.Pos.Inode != 0 || context.Key.Pos.Offset == 0)
        {
            problem = $"inode key at {context.Key.Pos.ToText()}: inodes live at (0, number), number 1 or more";
            return false;
        }
        return true;
    }

    private static bool ValidateDirent(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        if (!DirentValue.TryRead(value, out var dirent, out problem))
            return false;
        if (context.Key.Pos.Offset < FsPositions.FirstNameSlot || dirent.Target == 0)
        {
            problem = $"dirent at {context.Key.Pos.ToText()}: slot below {FsPositions.FirstNameSlot} or target 0";
            return false;
        }
        return true;
    }

    private static bool ValidateXattr(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem)
    {
        if (!XattrValue.TryRead(value, out _, out problem))
            return false;
        if (context.Key.Pos.Offset < FsPositions.FirstNameSlot)
        {
            problem = $"xattr at {context.Key.Pos.ToText()}: slot below {FsPositions.FirstNameSlot}";
            return false;
        }
        return true;
    }

    private static bool ValidateReflink(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem) =>
        ReflinkIntent.TryRead(value, out _, out problem);

    private static bool ValidateTruncate(in KeyValueContext context, ReadOnlySpan<byte> value, out string? problem) =>
        TruncateIntent.TryRead(value, out _, out problem);
}
