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
        fx.Engine.Sync();
        Assert.Single(fx.Committer.Roots);
        t.Insert(new Bpos(1, 3), Bytes("three"));
        Assert.True(t.Delete(new Bpos(1, 2)));
        fx.Engine.Sync();
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
        fx.Engine.Sync();
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
}
