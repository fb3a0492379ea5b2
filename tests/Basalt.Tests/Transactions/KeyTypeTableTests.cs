// The per-key-type table as transactions use it: complete at start-up (a build missing an entry
// does not mount), reserved types never written, and triggers run once per position on the
// coalesced (old, final new) pair. Tests here change the process-wide table for a moment, so
// they run alone (a collection without parallelism).
using System.Security.Cryptography;
using Basalt.Btree;
using Basalt.Diagnostics;
using Basalt.Format;
using Basalt.Fs;
using Basalt.TestKit;
using Basalt.Transactions;

namespace Basalt.Tests.Transactions;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KeyTypeTableCollection
{
    public const string Name = "key type table changes";
}

[Collection(KeyTypeTableCollection.Name)]
public sealed class KeyTypeTableTests
{
    private static readonly Bpos s_p = new(7, 1);
    private static readonly Bpos s_q = new(7, 2);

    [Fact]
    public void Every_key_type_of_the_build_has_an_entry_and_reserved_types_are_never_written()
    {
        KeyTypeTable.CheckComplete();
        using var fx = new BtreeFixture();
        foreach (var type in Enum.GetValues<KeyType>())
        {
            var behaviour = KeyTypeTable.Get(type);
            Assert.True(behaviour is not null, $"{type.ToText()} has no table entry");
            Assert.NotNull(KeyTypeTable.ToText(type, new byte[8]));
            if (behaviour.Writable && type is not KeyType.Deleted)
                continue;
            // Deleted keys are written by Delete; a reserved type is not written by this build at all.
            var e = Assert.Throws<BasaltException>(() => fx.Fs.Transact(t => t.Set(BtreeId.Test, new Bkey(s_p, type), [])));
            Assert.Equal(ErrorCode.InvalidArgument, e.Code);
            Assert.Contains(type.ToText(), e.Message, StringComparison.Ordinal);
        }
        Assert.True(KeyTypeTable.Get(KeyType.Cookie)!.Writable);
        Assert.True(KeyTypeTable.Get(KeyType.Counted)!.Writable);
        Assert.NotNull(KeyTypeTable.Get(KeyType.Counted)!.Trigger);
        Assert.Empty(BtreeAssertions.Contents(fx.Test));
    }

    [Fact]
    public void A_build_missing_an_entry_is_refused_at_mount_with_the_types_named_and_nothing_written()
    {
        using var fx = new BtreeFixture();
        fx.Fs.Transact(t => t.Set(BtreeId.Test, s_p, [1]), CommitOptions.Durable);
        fx.Fs.Close(sync: false);
        var image = SHA256.HashData(fx.Memory.Contents);
        var accounting = KeyTypeTable.Get(KeyType.Accounting)!;
        var counted = KeyTypeTable.Get(KeyType.Counted)!;
        KeyTypeTable.Unregister(KeyType.Accounting);
        KeyTypeTable.Unregister(KeyType.Counted);
        try
        {
            var direct = Assert.Throws<InvalidOperationException>(KeyTypeTable.CheckComplete);
            var e = Assert.Throws<InvalidOperationException>(() => BasaltFileSystem.Mount(fx.Memory, new MountOptions()));
            Assert.Equal(direct.Message, e.Message);
            Assert.Contains("without a behaviour table entry", e.Message, StringComparison.Ordinal);
            Assert.Contains(KeyType.Accounting.ToText(), e.Message, StringComparison.Ordinal);
            Assert.Contains(KeyType.Counted.ToText(), e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(KeyType.Cookie.ToText(), e.Message, StringComparison.Ordinal);
        }
        finally
        {
            KeyTypeTable.Register(KeyType.Accounting, accounting);
            KeyTypeTable.Register(KeyType.Counted, counted);
        }
        Assert.Equal(image, SHA256.HashData(fx.Memory.Contents));

        // With the table whole again the same image mounts and replays the commit.
        using var fs = BasaltFileSystem.Mount(fx.Memory, new MountOptions { Journal = fx.JournalOptions });
        Assert.NotNull(fs.Recovery.Replayed);
        Assert.True(fs.Btrees[BtreeId.Test].TryGet(s_p, out _));
    }

    [Fact]
    public void A_trigger_runs_once_per_position_on_the_coalesced_old_and_final_new_pair()
    {
        var original = KeyTypeTable.Get(KeyType.Counted)!;
        var pairs = new List<string>();
        KeyTypeTable.Register(KeyType.Counted, original with
        {
            Trigger = (ITriggerTransaction t, BtreeId btree, in KeyVersion oldKey, in KeyVersion newKey) =>
            {
                pairs.Add($"{oldKey.Key.Pos.ToText()}: {Text(oldKey)} -> {Text(newKey)}");
                original.Trigger!(t, btree, oldKey, newKey);
            },
        });
        try
        {
            using var fx = new BtreeFixture();
            // Each body starts by forgetting what an earlier attempt's triggers recorded: only the
            // attempt that commits counts.
            List<string> Run(Action<Transaction> body)
            {
                fx.Fs.Transact(t =>
                {
                    pairs.Clear();
                    body(t);
                });
                Assert.Null(CountedKeys.CheckSummary(fx.Test));
                return [.. pairs];
            }

            // Set then delete of a new position: nothing changed, no trigger, no summary change.
            Assert.Empty(Run(t =>
            {
                t.Set(BtreeId.Test, new Bkey(s_p, KeyType.Counted), CountedKeys.Value(5));
                t.Delete(BtreeId.Test, s_p);
            }));
            Assert.False(fx.Test.TryGet(s_p, out _));
            Assert.Equal((0UL, 0UL), CountedKeys.ReadSummary(fx.Test));

            Assert.Equal(["7:1:0: absent -> counted 5"], Run(t =>
                t.Set(BtreeId.Test, new Bkey(s_p, KeyType.Counted), CountedKeys.Value(5))));

            // Two overwrites: one pair from the committed value to the last one.
            Assert.Equal(["7:1:0: counted 5 -> counted 9"], Run(t =>
            {
                t.Set(BtreeId.Test, new Bkey(s_p, KeyType.Counted), CountedKeys.Value(7));
                t.Set(BtreeId.Test, new Bkey(s_p, KeyType.Counted), CountedKeys.Value(9));
            }));
            Assert.Equal((1UL, 9UL), CountedKeys.ReadSummary(fx.Test));

            // Overwrite then delete of an existing key: one pair, old to absent.
            Assert.Equal(["7:1:0: counted 9 -> absent"], Run(t =>
            {
                t.Set(BtreeId.Test, new Bkey(s_p, KeyType.Counted), CountedKeys.Value(11));
                t.Delete(BtreeId.Test, s_p);
            }));
            Assert.Equal((0UL, 0UL), CountedKeys.ReadSummary(fx.Test));

            // A type change either way runs the counted trigger once with the other type on one side.
            Assert.Equal(["7:2:0: absent -> counted 3"], Run(t =>
            {
                t.Set(BtreeId.Test, s_q, [1, 2, 3]);
                t.Set(BtreeId.Test, new Bkey(s_q, KeyType.Counted), CountedKeys.Value(3));
            }));
            Assert.Equal(["7:2:0: counted 3 -> cookie"], Run(t => t.Set(BtreeId.Test, s_q, [1])));
            Assert.Equal((0UL, 0UL), CountedKeys.ReadSummary(fx.Test));

            // Two positions: one pair each, in one commit.
            Assert.Equal(["7:1:0: absent -> counted 1", "7:2:0: cookie -> counted 2"], Run(t =>
            {
                t.Set(BtreeId.Test, new Bkey(s_p, KeyType.Counted), CountedKeys.Value(1));
                t.Set(BtreeId.Test, new Bkey(s_q, KeyType.Counted), CountedKeys.Value(2));
            }).Order());
            Assert.Equal((2UL, 3UL), CountedKeys.ReadSummary(fx.Test));
        }
        finally
        {
            KeyTypeTable.Register(KeyType.Counted, original);
        }
    }

    private static string Text(in KeyVersion v) =>
        !v.Exists ? "absent"
        : v.Key.Type == KeyType.Counted ? $"counted {TransactionTestData.ReadU64(v.Value.Span)}"
        : v.Key.Type.ToText();
}
