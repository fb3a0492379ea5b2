// A closed range of journal seqs: the unit of the journal blacklist (kept in the superblock and
// in journal entries) and of the seq ranges recovery reports as lost.
namespace Basalt.Format;

/// <summary>A closed range of journal seqs [First, Last].</summary>
public readonly record struct SeqRange(ulong First, ulong Last)
{
    public bool Contains(ulong seq) => seq >= First && seq <= Last;

    public ulong Count => Last - First + 1;

    public string ToText() => First == Last ? $"seq {First}" : $"seqs {First}..{Last}";

    public override string ToString() => ToText();
}
