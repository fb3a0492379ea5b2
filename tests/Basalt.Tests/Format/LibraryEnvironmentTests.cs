// The library never reads the environment: what a mount, a format or fsck does depends only on
// the options the caller passes (the CLI and the test kit set them explicitly). A variable left
// in a user's shell must not change how a program that links Basalt behaves.
using System.Text.RegularExpressions;

namespace Basalt.Tests.Format;

public sealed class LibraryEnvironmentTests
{
    [Fact]
    public void No_library_source_reads_an_environment_variable()
    {
        var root = Path.Combine(Basalt.Tests.Fsck.FsckDocsTests.FindRepositoryRoot(), "src", "Basalt");
        var files = Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        Assert.True(files.Count > 100, $"found only {files.Count} library sources under {root}");
        var reads = new Regex(@"Environment\s*\.\s*(GetEnvironmentVariable|GetEnvironmentVariables|ExpandEnvironmentVariables)\b");
        var offenders = files
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (File: f, Line: i + 1, Text: line)))
            .Where(l => reads.IsMatch(l.Text))
            .Select(l => $"{Path.GetRelativePath(root, l.File)}:{l.Line}: {l.Text.Trim()}")
            .ToList();
        Assert.True(offenders.Count == 0, "the library reads the environment:\n" + string.Join('\n', offenders));
    }
}
