// Extended attributes, not following a final symlink (the l* calls). There is no *at form, so a
// name is reached as "/proc/self/fd/<dir fd>/<name>" (see LocalFs.cs): relative to the directory
// descriptor like every other call here. Names and values are bytes; lists and values are read
// by asking for the size, then reading, and asking again if the attribute grew meanwhile (ERANGE).
using System.Globalization;
using System.Text;

namespace Basalt.Cli.Local;

internal static partial class LocalFs
{
    /// <summary>The names of a file's extended attributes (every namespace the caller may see).</summary>
    public static List<byte[]> ListXattrs(LocalFd dir, ReadOnlySpan<byte> name)
    {
        using var lease = new DescriptorLease(dir);
        var path = XattrPath(dir, name, "list extended attributes of");
        byte[] list;
        nint length;
        while (true)
        {
            var size = LocalLibC.LListXattr(path, [], 0);
            if (size < 0)
                ThrowLast("list extended attributes of", dir, name);
            list = new byte[size];
            length = LocalLibC.LListXattr(path, list, (nuint)list.Length);
            if (length >= 0)
                break;
            if (LastErrno() != Errno.ERANGE)
                ThrowLast("list extended attributes of", dir, name);
        }
        var names = new List<byte[]>();
        foreach (var range in list.AsSpan(0, (int)length).Split((byte)0))
        {
            if (range.End.GetOffset((int)length) > range.Start.GetOffset((int)length))
                names.Add(list[range]);
        }
        return names;
    }

    /// <summary>The value of one attribute; a missing one fails with ENODATA.</summary>
    public static byte[] GetXattr(LocalFd dir, ReadOnlySpan<byte> name, ReadOnlySpan<byte> attribute)
    {
        var action = XattrAction("read", attribute);
        using var lease = new DescriptorLease(dir);
        var path = XattrPath(dir, name, action);
        var cAttribute = Terminated(attribute, stackalloc byte[NameScratch], action, dir, name);
        while (true)
        {
            var size = LocalLibC.LGetXattr(path, cAttribute, [], 0);
            if (size < 0)
                ThrowLast(action, dir, name);
            var value = new byte[size];
            var length = LocalLibC.LGetXattr(path, cAttribute, value, (nuint)value.Length);
            if (length >= 0)
                return length == value.Length ? value : value.AsSpan(0, (int)length).ToArray();
            if (LastErrno() != Errno.ERANGE)
                ThrowLast(action, dir, name);
        }
    }

    /// <summary>Creates or replaces one attribute.</summary>
    public static void SetXattr(LocalFd dir, ReadOnlySpan<byte> name, ReadOnlySpan<byte> attribute, ReadOnlySpan<byte> value)
    {
        var action = XattrAction("set", attribute);
        using var lease = new DescriptorLease(dir);
        var path = XattrPath(dir, name, action);
        var cAttribute = Terminated(attribute, stackalloc byte[NameScratch], action, dir, name);
        if (LocalLibC.LSetXattr(path, cAttribute, value, (nuint)value.Length, flags: 0) < 0)
            ThrowLast(action, dir, name);
    }

    /// <summary>Removes one attribute; a missing one fails with ENODATA.</summary>
    public static void RemoveXattr(LocalFd dir, ReadOnlySpan<byte> name, ReadOnlySpan<byte> attribute)
    {
        var action = XattrAction("remove", attribute);
        using var lease = new DescriptorLease(dir);
        var path = XattrPath(dir, name, action);
        var cAttribute = Terminated(attribute, stackalloc byte[NameScratch], action, dir, name);
        if (LocalLibC.LRemoveXattr(path, cAttribute) < 0)
            ThrowLast(action, dir, name);
    }

    private static string XattrAction(string verb, ReadOnlySpan<byte> attribute) =>
        $"{verb} extended attribute '{NameText.ToText(attribute)}' of";

    // "/proc/self/fd/N/name" NUL-terminated; below the working directory just "name".
    private static byte[] XattrPath(LocalFd dir, ReadOnlySpan<byte> name, string action)
    {
        if (name.Contains((byte)0))
            throw new LocalFsException(Errno.EINVAL, action, dir.PathOf(name));
        var prefix = string.Create(CultureInfo.InvariantCulture, $"/proc/self/fd/{dir.DangerousGetHandle()}/");
        var isCwd = dir.DangerousGetHandle() == LocalLibC.AtFdCwd;
        var prefixLength = isCwd ? 0 : Encoding.ASCII.GetByteCount(prefix);
        var path = new byte[prefixLength + name.Length + 1];
        if (!isCwd)
            Encoding.ASCII.GetBytes(prefix, path);
        name.CopyTo(path.AsSpan(prefixLength));
        return path;
    }

    // Holds a reference on the directory descriptor while its number is used in a /proc path, so
    // a Dispose on another thread cannot close it and let the number name another file meanwhile.
    private readonly ref struct DescriptorLease
    {
        private readonly LocalFd _fd;
        private readonly bool _added;

        public DescriptorLease(LocalFd fd)
        {
            _fd = fd;
            fd.DangerousAddRef(ref _added);
        }

        public void Dispose()
        {
            if (_added)
                _fd.DangerousRelease();
        }
    }
}
