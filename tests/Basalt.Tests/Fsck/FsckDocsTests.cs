using Basalt.Format;
using Basalt.Fsck;

namespace Basalt.Tests.Fsck;

public sealed class FsckDocsTests
{
    private const string RegenerateHint =
        "docs/fsck-errors.md is stale; regenerate it with: BASALT_REGENERATE_DOCS=1 dotnet test tests/Basalt.Tests --filter FsckDocs";

    [Fact]
    public void FsckDocs_committed_file_matches_the_catalogue()
    {
        var path = Path.Combine(FindRepositoryRoot(), FsckDocs.RelativePath);
        var generated = FsckDocs.Generate();
        if (Environment.GetEnvironmentVariable("BASALT_REGENERATE_DOCS") == "1")
            File.WriteAllText(path, generated);
        Assert.True(File.Exists(path), RegenerateHint);
        var committed = File.ReadAllText(path);
        Assert.True(committed == generated, RegenerateHint);
    }

    [Fact]
    public void FsckDocs_lists_every_error_and_pass_once()
    {
        var doc = FsckDocs.Generate();
        foreach (var e in FsckCatalogue.All)
        {
            Assert.Contains($"| {(ushort)e.Id} | `{e.Name}` |", doc, StringComparison.Ordinal);
            Assert.Single(FsckCatalogue.All, x => x.Name == e.Name);
        }
        foreach (var p in FsckCatalogue.Passes)
            Assert.Contains($"`{p.Name}`", doc, StringComparison.Ordinal);
    }

    [Fact]
    public void FsckCatalogue_has_an_entry_for_every_id_and_pass_ids_run_in_order()
    {
        foreach (var id in Enum.GetValues<FsckErrorId>())
            Assert.Equal(id, FsckCatalogue.Get(id).Id);
        Assert.Equal(Enum.GetValues<FsckPassId>().Order(), FsckCatalogue.Passes.Select(p => p.Id).Order());
        // Ids are permanent, so a pass added later that must run early breaks the ascending order
        // on purpose: check_reflink repairs refcounts before the space passes recount allocation.
        var ids = FsckCatalogue.Passes.Select(p => p.Id).ToList();
        var older = ids.Where(id => id != FsckPassId.CheckReflink).ToList();
        Assert.Equal(older.Order(), older);
        Assert.True(ids.IndexOf(FsckPassId.CheckReflink) < ids.IndexOf(FsckPassId.CheckAllocations));
        Assert.True(ids.IndexOf(FsckPassId.CheckReflink) > ids.IndexOf(FsckPassId.CheckBtreeNodes));
    }

    internal static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Basalt.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"no Basalt.slnx above {AppContext.BaseDirectory}");
    }
}
