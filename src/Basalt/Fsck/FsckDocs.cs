// Generates docs/fsck-errors.md from the catalogue, so the document can never disagree with
// the code: a test compares the committed file with Generate() and fails when it is stale.
using System.Text;
using Basalt.Format;

namespace Basalt.Fsck;

public static class FsckDocs
{
    /// <summary>Path of the generated document, relative to the repository root.</summary>
    public const string RelativePath = "docs/fsck-errors.md";

    public static string Generate()
    {
        var md = new StringBuilder();
        md.Append("# fsck passes and errors\n\n");
        md.Append("<!-- Generated from src/Basalt/Format/FsckCatalogue*.cs by FsckDocs.Generate(); do not edit.\n");
        md.Append("     Regenerate: BASALT_REGENERATE_DOCS=1 dotnet test tests/Basalt.Tests --filter FsckDocs -->\n\n");
        md.Append("Ids are permanent: they are stored in the superblock's error counters and never renumbered.\n\n");

        md.Append("## Passes\n\n");
        md.Append("Passes run in this order; each reports only its own findings.\n\n");
        md.Append("| order | id | name | what it does |\n");
        md.Append("| ---: | ---: | --- | --- |\n");
        var order = 1;
        foreach (var pass in FsckCatalogue.Passes)
            md.Append($"| {order++} | {(byte)pass.Id} | `{pass.Name}` | {Cell(pass.Description)} |\n");

        md.Append("\n## Repair policies\n\n");
        md.Append("| policy | `-p` | `-y` | `-n` | no flag, terminal | no flag, not a terminal |\n");
        md.Append("| --- | --- | --- | --- | --- | --- |\n");
        md.Append("| automatic | repaired | repaired | reported (repair runs on an overlay only) | asked | reported |\n");
        md.Append("| with -y | reported | repaired | reported (repair runs on an overlay only) | asked | reported |\n");
        md.Append("| never | reported | reported | reported | reported | reported |\n");

        md.Append("\n## Node read classes\n\n");
        md.Append("How a btree node read reacts when it meets the error.\n\n");
        md.Append("| class | meaning |\n");
        md.Append("| --- | --- |\n");
        md.Append("| fixable | repaired in memory (key dropped, bset truncated); the node is rewritten |\n");
        md.Append("| want retry | probably media damage: another replica is tried; without one, treated as fixable |\n");
        md.Append("| must retry | the wrong thing was read: another replica is tried; without one the node is bad |\n");
        md.Append("| bad node | the node cannot be used: its pointer is dropped from the parent |\n");
        md.Append("| incompatible | written by an unsupported format version: refused, never repaired |\n");

        md.Append("\n## Errors\n\n");
        md.Append("| id | name | read class | repair policy | meaning | repair |\n");
        md.Append("| ---: | --- | --- | --- | --- | --- |\n");
        foreach (var e in FsckCatalogue.All.OrderBy(e => (ushort)e.Id))
        {
            md.Append($"| {(ushort)e.Id} | `{e.Name}` | {ClassText(e.ReadClass)} | {PolicyText(e.Policy)} | ")
              .Append($"{Cell(e.Meaning)} | {Cell(e.Repair)} |\n");
        }
        return md.ToString();
    }

    public static string PolicyText(RepairPolicy policy) => policy switch
    {
        RepairPolicy.Automatic => "automatic",
        RepairPolicy.WithYes => "with -y",
        _ => "never",
    };

    public static string ClassText(NodeErrorClass? readClass) => readClass switch
    {
        null => "-",
        NodeErrorClass.Fixable => "fixable",
        NodeErrorClass.WantRetry => "want retry",
        NodeErrorClass.MustRetry => "must retry",
        NodeErrorClass.BadNode => "bad node",
        _ => "incompatible",
    };

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);
}
