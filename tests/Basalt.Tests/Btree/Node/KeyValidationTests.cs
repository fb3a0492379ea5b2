using Basalt.Btree;
using Basalt.Format;

namespace Basalt.Tests.Btree.Node;

public sealed class KeyValidationTests
{
    private const int NodeSize = 16384;
    private static readonly Bpos s_min = Bpos.Min;
    private static readonly Bpos s_max = Bpos.Max;

    private static FsckErrorId? Check(BtreeId btree, byte level, Bkey key, byte[]? value = null, Bpos? min = null, Bpos? max = null, long deviceSize = 0)
    {
        var ok = KeyValidation.Validate(btree, level, key, value ?? [], min ?? s_min, max ?? s_max, NodeSize, deviceSize, out var id, out var detail);
        if (ok)
        {
            Assert.Equal(string.Empty, detail);
            return null;
        }
        Assert.False(string.IsNullOrEmpty(detail));
        return id;
    }

    private static byte[] Ptr(ushort sectorsWritten = 4, ulong offset = 64, ulong seq = 9) =>
        new BtreePtrValue { Seq = seq, SectorsWritten = sectorsWritten, MinKey = Bpos.Min, Ptrs = [new DevicePtr(0, offset, 0)] }.ToBytes();

    [Fact]
    public void Extent_keys_need_a_size_within_their_offset_except_deletions()
    {
        Basalt.Data.DataKeyTypes.Register();
        var snap = uint.MaxValue;
        var value = new Basalt.Data.ExtentValue { ChecksumType = ChecksumType.Crc32C, CoveredSectors = 16, Ptrs = [new DevicePtr(0, 4096, 0)] }.ToBytes();
        Assert.Null(Check(BtreeId.Extents, 0, new Bkey(new Bpos(5, 16, snap), KeyType.Extent, 16), value));
        Assert.Equal(FsckErrorId.BkeyValueInvalid, Check(BtreeId.Extents, 0, new Bkey(new Bpos(5, 16, snap), KeyType.Extent, 16), []));
        Assert.Equal(FsckErrorId.BkeyBadSize, Check(BtreeId.Extents, 0, new Bkey(new Bpos(5, 16, snap), KeyType.Extent, 0), value));
        Assert.Equal(FsckErrorId.BkeyBadSize, Check(BtreeId.Extents, 0, new Bkey(new Bpos(5, 16, snap), KeyType.Extent, 17), value));
        Assert.Null(Check(BtreeId.Extents, 0, new Bkey(new Bpos(5, 16, snap), KeyType.Deleted, 0)));
        Assert.Equal(FsckErrorId.BkeyBadSize, Check(BtreeId.Inodes, 0, new Bkey(new Bpos(0, 5, snap), KeyType.Inode, 1)));
    }

    [Fact]
    public void Snapshot_field_follows_the_btree()
    {
        Basalt.Fs.FsKeyTypes.Register();
        var inode = new Basalt.Fs.InodeValue { Mode = 0x81A4 }.ToBytes();
        Assert.Null(Check(BtreeId.Inodes, 0, new Bkey(new Bpos(0, 5, uint.MaxValue), KeyType.Inode), inode));
        Assert.Equal(FsckErrorId.BkeyBadSnapshot, Check(BtreeId.Inodes, 0, new Bkey(new Bpos(0, 5, 0), KeyType.Inode)));
        Assert.Equal(FsckErrorId.BkeyBadSnapshot, Check(BtreeId.Alloc, 0, new Bkey(new Bpos(0, 5, 1), KeyType.Alloc)));
        // Interior keys are child pointers at child max keys: no snapshot rule, and max is allowed.
        Assert.Null(Check(BtreeId.Alloc, 1, new Bkey(Bpos.Max, KeyType.BtreePtr), Ptr()));
    }

    [Fact]
    public void Types_follow_the_btree_and_level()
    {
        Assert.Equal(FsckErrorId.BkeyInvalidTypeForBtree, Check(BtreeId.Test, 0, new Bkey(new Bpos(1, 0), KeyType.Inode)));
        Assert.Equal(FsckErrorId.BkeyInvalidTypeForBtree, Check(BtreeId.Test, 0, new Bkey(new Bpos(1, 0), (KeyType)77)));
        Assert.Equal(FsckErrorId.BkeyInvalidTypeForBtree, Check(BtreeId.Test, 1, new Bkey(new Bpos(1, 0), KeyType.Cookie)));
        Assert.Equal(FsckErrorId.BkeyInvalidTypeForBtree, Check((BtreeId)40, 0, new Bkey(new Bpos(1, 0), KeyType.Cookie)));
        Assert.Null(Check(BtreeId.Test, 1, new Bkey(new Bpos(1, 0), KeyType.Deleted)));
        Assert.Null(Check(BtreeId.Test, 0, new Bkey(new Bpos(1, 0), KeyType.Deleted)));
    }

    [Fact]
    public void Position_must_lie_inside_the_node_and_not_at_max()
    {
        Assert.Equal(FsckErrorId.BkeyBeforeStartOfBtreeNode, Check(BtreeId.Test, 0, new Bkey(new Bpos(1, 0), KeyType.Cookie), min: new Bpos(2, 0)));
        Assert.Equal(FsckErrorId.BkeyAfterEndOfBtreeNode, Check(BtreeId.Test, 0, new Bkey(new Bpos(3, 0), KeyType.Cookie), max: new Bpos(2, 0)));
        Assert.Null(Check(BtreeId.Test, 0, new Bkey(new Bpos(2, 0), KeyType.Cookie), min: new Bpos(2, 0), max: new Bpos(2, 0)));
        Assert.Equal(FsckErrorId.BkeyAtPosMax, Check(BtreeId.Inodes, 0, new Bkey(Bpos.Max, KeyType.Inode)));
    }

    [Fact]
    public void Child_pointer_values_are_checked()
    {
        Assert.Null(Check(BtreeId.Test, 1, new Bkey(new Bpos(1, 0), KeyType.BtreePtr), Ptr()));
        Assert.Equal(FsckErrorId.BkeyValueInvalid, Check(BtreeId.Test, 1, new Bkey(new Bpos(1, 0), KeyType.BtreePtr), Ptr(sectorsWritten: 0)));
        Assert.Equal(FsckErrorId.BkeyValueInvalid, Check(BtreeId.Test, 1, new Bkey(new Bpos(1, 0), KeyType.BtreePtr), Ptr(sectorsWritten: 33)));
        Assert.Equal(FsckErrorId.BkeyValueInvalid, Check(BtreeId.Test, 1, new Bkey(new Bpos(1, 0), KeyType.BtreePtr), Ptr(seq: 0)));
        Assert.Equal(FsckErrorId.BkeyValueInvalid, Check(BtreeId.Test, 1, new Bkey(new Bpos(1, 0), KeyType.BtreePtr), new byte[24]));
        // Inside a 1 MiB device a node at sector 2048 fits exactly; one sector further it does not.
        Assert.Null(Check(BtreeId.Test, 1, new Bkey(new Bpos(1, 0), KeyType.BtreePtr), Ptr(offset: 2048 - 32), deviceSize: 1 << 20));
        Assert.Equal(FsckErrorId.BkeyValueInvalid,
            Check(BtreeId.Test, 1, new Bkey(new Bpos(1, 0), KeyType.BtreePtr), Ptr(offset: 2048 - 31), deviceSize: 1 << 20));
    }

    [Fact]
    public void Values_are_bounded_and_deletions_carry_none()
    {
        Assert.Null(Check(BtreeId.Test, 0, new Bkey(new Bpos(1, 0), KeyType.Cookie), new byte[NodeSize / 4]));
        Assert.Equal(FsckErrorId.BkeyValueInvalid, Check(BtreeId.Test, 0, new Bkey(new Bpos(1, 0), KeyType.Cookie), new byte[(NodeSize / 4) + 1]));
        Assert.Equal(FsckErrorId.BkeyValueInvalid, Check(BtreeId.Test, 0, new Bkey(new Bpos(1, 0), KeyType.Deleted), [1]));
    }

    [Fact]
    public void Write_side_run_validation_names_the_first_bad_key()
    {
        var builder = new KeyRunBuilder();
        builder.Add(new Bkey(new Bpos(1, 0), KeyType.Cookie), [1]);
        builder.Add(new Bkey(new Bpos(2, 0), KeyType.Cookie), [2]);
        builder.Add(new Bkey(new Bpos(3, 0), KeyType.Inode), [3]);
        var run = builder.Build();

        Assert.False(KeyValidation.ValidateRun(BtreeId.Test, 0, run, Bpos.Min, Bpos.Max, NodeSize, out var index, out var id, out _));
        Assert.Equal(2, index);
        Assert.Equal(FsckErrorId.BkeyInvalidTypeForBtree, id);
        Assert.False(KeyValidation.ValidateRun(BtreeId.Test, 0, run, new Bpos(2, 0), Bpos.Max, NodeSize, out index, out id, out _));
        Assert.Equal((0, FsckErrorId.BkeyBeforeStartOfBtreeNode), (index, id));
        Assert.True(KeyValidation.ValidateRun(BtreeId.Test, 0, KeyRun.Empty, Bpos.Min, Bpos.Max, NodeSize, out index, out _, out _));
        Assert.Equal(-1, index);
    }

    [Fact]
    public void Key_type_table_prints_known_types_and_passes_unknown_ones_through()
    {
        Assert.Equal("1:0:0 cookie: 2 bytes abcd", KeyTypeTable.ToText(new Bkey(new Bpos(1, 0), KeyType.Cookie), [0xab, 0xcd]));
        // Whiteout has no behaviour registered by any layer: its values pass through and print as their length.
        Assert.Equal("3 bytes", KeyTypeTable.ToText(KeyType.Whiteout, [1, 2, 3]));
        Assert.StartsWith("seq 0000000000000009 sectors_written 4", KeyTypeTable.ToText(KeyType.BtreePtr, Ptr()), StringComparison.Ordinal);
        Assert.StartsWith("invalid btree pointer", KeyTypeTable.ToText(KeyType.BtreePtr, [1, 2]), StringComparison.Ordinal);
        Assert.True(KeyTypeTable.ValidateValue(new KeyValueContext(BtreeId.Extents, 0, new Bkey(Bpos.Min, KeyType.Whiteout), NodeSize, 0), [9], out _));
    }

    [Fact]
    public void Higher_layers_register_value_validators_and_printers()
    {
        // LoggedOpFinsert is registered by nothing else in the test suite.
        var key = new Bkey(new Bpos(0, 1), KeyType.LoggedOpFinsert);
        Assert.Null(Check(BtreeId.LoggedOps, 0, key, [1, 2, 3]));

        KeyTypeTable.Register(KeyType.LoggedOpFinsert, new KeyTypeBehaviour(
            (in KeyValueContext _, ReadOnlySpan<byte> value, out string? problem) =>
            {
                problem = value.Length == 8 ? null : "finsert value must be 8 bytes";
                return problem is null;
            },
            value => $"finsert {value.Length}"));

        Assert.True(KeyTypeTable.IsRegistered(KeyType.LoggedOpFinsert));
        Assert.Equal(FsckErrorId.BkeyValueInvalid, Check(BtreeId.LoggedOps, 0, key, [1, 2, 3]));
        Assert.Null(Check(BtreeId.LoggedOps, 0, key, new byte[8]));
        Assert.Equal("finsert 8", KeyTypeTable.ToText(KeyType.LoggedOpFinsert, new byte[8]));
    }
}
