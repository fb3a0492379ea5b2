// How a check anywhere in the engine reports a finding to fsck. The fsck layer implements it
// (counting, printing, asking, deciding by mode and repair policy); checks that live beside
// their subsystem (topology, node validation, superblock copies) call it and repair only when
// it says so. Keeping the interface here lets lower layers report without referencing fsck.
namespace Basalt.Format;

public interface IFsckReporter
{
    /// <summary>
    /// Records a finding of <paramref name="id"/> at <paramref name="where"/> (device, btree, level,
    /// node, position) with a one-line <paramref name="detail"/>. Returns true when the caller must
    /// apply the catalogue's repair now, false when it must leave the problem as it is.
    /// </summary>
    bool Report(FsckErrorId id, string where, string detail);

    /// <summary>Counts an event that is normal rather than an error (a bset beyond sectors_written).</summary>
    void Count(string what, long amount = 1);

    /// <summary>
    /// Records a key an applied repair lost (its leaf dropped or shrunk away from it), where the
    /// pass can name it; keys under unreadable nodes cannot be named and are not reported.
    /// </summary>
    void KeyLost(BtreeId btree, Bpos pos)
    {
    }
}
