// Random damage never throws: whatever bytes a slot holds, the reader returns a result (never an
// exception, never a hang) and the inspector walks it; a usable result is always a sorted,
// validated run.
using Basalt.Btree;
using Basalt.Btree.Node;
using Basalt.Format;
using Basalt.TestKit;
using Xunit.Abstractions;
using static Basalt.Tests.Btree.Node.TestNode;

namespace Basalt.Tests.Btree.Node;

public sealed class NodeRandomDamageTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Reader_survives_random_bit_flips_zeroed_ranges_and_garbage(byte level)
    {
        var seed = TestSeed.Get(output);
        var random = new Random(seed);
        var seen = new HashSet<FsckErrorId>();
        var usable = 0;
        for (var round = 0; round < LongTests.Scale(400); round++)
        {
            var blockSize = random.Next(2) == 0 ? 512 : 1024;
            var node = new TestNode(BtreeId.Test, level, P(10), P(5000), nodeSize: 8192, blockSize: blockSize);
            var next = 11UL;
            for (var b = random.Next(1, 5); b > 0; b--)
            {
                var builder = new KeyRunBuilder();
                for (var n = random.Next(1, 12); n > 0; n--)
                {
                    next += (ulong)random.Next(1, 40);
                    if (level == 0)
                    {
                        var value = new byte[random.Next(0, 80)];
                        random.NextBytes(value);
                        builder.Add(new Bkey(P(next), KeyType.Cookie), value);
                    }
                    else
                    {
                        var child = new BtreePtrValue
                        {
                            Seq = (ulong)random.NextInt64(1, long.MaxValue),
                            SectorsWritten = (ushort)random.Next(1, 17),
                            MinKey = P(next - 1),
                            Ptrs = [new DevicePtr(0, (ulong)random.Next(0, 1 << 20), (byte)random.Next(256))],
                        };
                        builder.Add(new Bkey(P(next), KeyType.BtreePtr), child.ToBytes());
                    }
                }
                var keys = builder.Build();
                var needed = BtreeNodeWriter.AppendRecordSize(keys.EncodedBytes, blockSize) + 112;
                if (node.Written + needed > node.NodeSize)
                    break;
                node.Write(keys);
            }
            var sectorsWritten = (ushort)(node.Written / 512);

            Damage(node.Slot, node.Written, random);
            if (random.Next(3) == 0)
                BtreeNodeInspector.RecomputeAllChecksums(node.Slot);

            var context = node.Context(haveRetry: random.Next(2) == 0, sectorsWritten: random.Next(8) == 0 ? (ushort)random.Next(0, 20) : sectorsWritten);
            NodeReadResult result;
            try
            {
                result = BtreeNodeReader.Read(node.Slot, context);
                _ = BtreeNodeInspector.Walk(node.Slot);
                _ = result.ToText();
            }
            catch (Exception e)
            {
                Assert.Fail($"seed {seed} round {round}: {e}");
                throw;
            }

            seen.UnionWith(result.Findings.Select(f => f.Id));
            usable += result.Ok ? 1 : 0;
            Assert.True(result.Ok || result.FailureClass is not null, $"seed {seed} round {round}");
            Assert.True(result.Ok || result.Findings.Count > 0, $"seed {seed} round {round}: a failed read without a finding");
            Assert.Equal(result.Findings.Count > 0, result.NeedsRewrite);
            if (result.Ok)
            {
                for (var i = 0; i < result.Keys.Count; i++)
                {
                    ref readonly var e = ref result.Keys[i];
                    Assert.NotEqual(KeyType.Deleted, e.Key.Type);
                    if (i > 0)
                        Assert.True(result.Keys[i - 1].Key.Pos < e.Key.Pos, $"seed {seed} round {round}: keys out of order");
                    Assert.True(KeyValidation.Validate(BtreeId.Test, level, e.Key, result.Keys.ValueOf(i), result.Header.MinKey,
                        result.Header.MaxKey, node.NodeSize, out _, out var detail), $"seed {seed} round {round}: {detail}");
                }
            }
        }
        output.WriteLine($"finding ids seen: {string.Join(", ", seen)}; usable {usable}");
        AssertVariety(seen, usable, seed);
    }

    private static void AssertVariety(HashSet<FsckErrorId> seen, int usable, int seed)
    {
        // A reader that gave up on every damaged node (or found nothing) would not get here.
        Assert.True(seen.Count >= 6, $"seed {seed}: only {string.Join(", ", seen)} seen");
        Assert.True(usable > 0, $"seed {seed}: no damaged node was usable");
    }

    private static void Damage(byte[] slot, int written, Random random)
    {
        var span = Math.Max(written, 512);
        for (var d = random.Next(1, 4); d > 0; d--)
        {
            switch (random.Next(4))
            {
                case 0:
                    var bit = random.Next(span * 8);
                    slot[bit / 8] ^= (byte)(1 << (bit % 8));
                    break;
                case 1:
                    var start = random.Next(span);
                    Array.Clear(slot, start, Math.Min(random.Next(1, 600), slot.Length - start));
                    break;
                case 2:
                    var at = random.Next(span - 8);
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(slot.AsSpan(at), (ulong)random.NextInt64());
                    break;
                default:
                    var garbage = random.Next(span);
                    random.NextBytes(slot.AsSpan(garbage, Math.Min(random.Next(1, 64), slot.Length - garbage)));
                    break;
            }
        }
    }
}
