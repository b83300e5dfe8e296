import Foundation

/// A fresh directory under /tmp with a short name (Unix socket paths must stay under 108 bytes),
/// removed by ``remove()``.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ prefix: String = "gn") {
        let name = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        path = "/tmp/\(name)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// `path/component`.
    public func appending(_ component: String) -> String { path + "/" + component }
}
