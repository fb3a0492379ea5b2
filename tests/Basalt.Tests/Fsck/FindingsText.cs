using Basalt.Fsck;

namespace Basalt.Tests.Fsck;

/// <summary>Findings as assertion messages show them: one line each.</summary>
internal static class FindingsText
{
    public static string Text(IEnumerable<FsckFinding> findings) => string.Join("\n", findings.Select(f => f.ToText()));
}
