namespace Basalt.Format;

/// <summary>On-disk format versions.</summary>
public static class FormatVersion
{
    /// <summary>The version this build writes.</summary>
    public const ushort Current = 1;

    /// <summary>The oldest version this build can read.</summary>
    public const ushort Min = 1;
}
