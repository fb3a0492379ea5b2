using System.Text;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.TestKit;

namespace Basalt.Tests.Btree;

public sealed class BtreeBasicTests
{
    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Single_leaf_insert_lookup_sync_remount()
    {
        using var fx = new BtreeFixture();
        var t = fx.Test;
        t.Insert(new Bpos(1, 1), Bytes("one"));
        t.Insert(new Bpos(1, 2), Bytes("two"));
        t.Insert(new Bpos(1, 1), Bytes("uno"));
        Assert.True(t.TryGet(new Bpos(1, 1), out var v));
        Assert.Equal("uno", Encoding.UTF8.GetString(v));
        Assert.False(t.TryGet(new Bpos(1, 3), out _));
        fx.Checkpoint();
        Assert.Single(fx.Fs.Superblock.Roots, r => r.Btree == BtreeId.Test);
        t.Insert(new Bpos(1, 3), Bytes("three"));
        Assert.True(t.Delete(new Bpos(1, 2)));
        fx.Checkpoint();
        fx.Remount();
        t = fx.Test;
        Assert.True(t.TryGet(new Bpos(1, 1), out v));
        Assert.Equal("uno", Encoding.UTF8.GetString(v));
        Assert.False(t.TryGet(new Bpos(1, 2), out _));
        Assert.True(t.TryGet(new Bpos(1, 3), out v));
        Assert.Equal("three", Encoding.UTF8.GetString(v));
        Assert.Equal(1, fx.Engine.Stats.NodeReads);
    }

    [Fact]
    public void Unsynced_changes_are_lost_at_remount()
    {
        using var fx = new BtreeFixture();
        for (var i = 0; i < 500; i++)
            fx.Test.Insert(BtreeFixture.Pos(i), Bytes($"v{i}"));
        fx.Checkpoint();
        for (var i = 500; i < 1000; i++)
            fx.Test.Insert(BtreeFixture.Pos(i), Bytes($"v{i}"));
        for (var i = 0; i < 100; i++)
            fx.Test.Delete(BtreeFixture.Pos(i));
        fx.Remount();
        var it = fx.Test.Iterate(Bpos.Min, Bpos.Max);
        var n = 0;
        while (it.MoveNext())
        {
            Assert.Equal(BtreeFixture.Pos(n), it.Key.Pos);
            Assert.Equal($"v{n}", Encoding.UTF8.GetString(it.Value));
            n++;
        }
        Assert.Equal(500, n);
    }

    [Fact]
    public void Invalid_keys_and_oversized_values_are_rejected()
    {
        using var fx = new BtreeFixture();
        var e = Assert.Throws<BasaltException>(() => fx.Test.Insert(Bpos.Max, Bytes("x")));
        Assert.Equal(ErrorCode.InvalidArgument, e.Code);
        e = Assert.Throws<BasaltException>(() => fx.Test.Insert(new Bpos(1, 1), new byte[fx.Engine.MaxValueBytes + 1]));
        Assert.Equal(ErrorCode.InvalidArgument, e.Code);
        e = Assert.Throws<BasaltException>(() => fx.Test.Insert(new Bpos(1, 1), [], KeyType.Inode));
        Assert.Equal(ErrorCode.InvalidArgument, e.Code);
        fx.Test.Insert(new Bpos(1, 1), new byte[fx.Engine.MaxValueBytes]);
    }

    [Fact]
    public void Iterators_seek_and_run_in_both_directions_across_nodes()
    {
        using var fx = new BtreeFixture();
        for (var i = 0; i < 2000; i += 2)
            fx.Test.Insert(BtreeFixture.Pos(i), Bytes($"v{i}"));
        var it = fx.Test.Iterate(BtreeFixture.Pos(100), BtreeFixture.Pos(1900));
        Assert.True(it.MoveNext());
        Assert.Equal(BtreeFixture.Pos(100), it.Key.Pos);
        it.Seek(BtreeFixture.Pos(1001));
        Assert.True(it.MoveNext());
        Assert.Equal(BtreeFixture.Pos(1002), it.Key.Pos);
        Assert.Equal("v1002", Encoding.UTF8.GetString(it.Value));
        it.Seek(BtreeFixture.Pos(5));
        Assert.True(it.MoveNext());
        Assert.Equal(BtreeFixture.Pos(100), it.Key.Pos);

        var reverse = fx.Test.Iterate(BtreeFixture.Pos(3), BtreeFixture.Pos(1501), reverse: true);
        var expected = 1500;
        while (reverse.MoveNext())
        {
            Assert.Equal(BtreeFixture.Pos(expected), reverse.Key.Pos);
            expected -= 2;
        }
        Assert.Equal(2, expected);
        reverse.Seek(BtreeFixture.Pos(11));
        Assert.True(reverse.MoveNext());
        Assert.Equal(BtreeFixture.Pos(10), reverse.Key.Pos);
        Assert.False(fx.Test.Iterate(BtreeFixture.Pos(9), BtreeFixture.Pos(3)).MoveNext());
        Assert.False(fx.Engine[BtreeId.Inodes].Iterate(Bpos.Min, Bpos.Max).MoveNext());
    }

    [Fact]
    public void Allocation_free_lookup_reports_the_length_and_copies_only_when_the_buffer_is_large_enough()
    {
        using var fx = new BtreeFixture();
        fx.Test.Insert(new Bpos(1, 1), Bytes("hello"));
        Span<byte> small = stackalloc byte[3];
        small.Fill(9);
        Assert.True(fx.Test.TryGet(new Bpos(1, 1), small, out var length));
        Assert.Equal(5, length);
        Assert.Equal(9, small[0]);
        Span<byte> big = stackalloc byte[16];
        Assert.True(fx.Test.TryGet(new Bpos(1, 1), big, out length));
        Assert.Equal("hello", Encoding.UTF8.GetString(big[..length]));
        Assert.False(fx.Test.TryGet(new Bpos(1, 2), big, out length));
        Assert.Equal(0, length);
    }

    [Fact]
    public void A_btree_emptied_by_deletes_stays_empty_across_remounts()
    {
        using var fx = new BtreeFixture();
        for (var i = 0; i < 3000; i++)
            fx.Test.Insert(BtreeFixture.Pos(i), Bytes($"v{i}"));
        fx.Checkpoint();
        Assert.Equal(3000, fx.Test.DeleteRange(Bpos.Min, Bpos.Max));
        Assert.Equal(0, fx.Test.Root!.Level);
        Assert.True(fx.Engine.Stats.RootCollapses > 0);
        fx.Checkpoint();
        fx.Remount();
        Assert.False(fx.Test.Iterate(Bpos.Min, Bpos.Max).MoveNext());
        fx.Test.ResetToEmpty();
        fx.Checkpoint();
        fx.Remount();
        Assert.False(fx.Test.Iterate(Bpos.Min, Bpos.Max).MoveNext());
        Assert.Equal(0, fx.Engine.Stats.IgnoredBsetsBeyondWritten);
    }
}
