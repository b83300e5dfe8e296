import Foundation

/// Inputs that once crashed a fuzz target, kept in `Fuzz/Regressions/<target>/` (and in its corpus),
/// so the normal suite replays them through the production parser (docs/operations.md, "Fuzzing").
public enum FuzzRegressions {
    /// The repository's `Fuzz/Regressions/<target>` directory.
    public static func directory(_ target: String) -> URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/Regressions/\(target)")
    }

    /// The bytes of one regression input.
    public static func input(_ target: String, _ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory(target).appendingPathComponent(name)))
    }
}
