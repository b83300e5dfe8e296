import GuildNetCore

/// Where a cluster's settings layer is kept: `settings.json` in the per-cluster layout
/// (``SettingsFile``), or the legacy host-wide DB's `cluster-settings` record.
///
/// Both calls are synchronous and short; ``ClusterSettings`` serializes them on its actor so a
/// write can never interleave with another.
public protocol ClusterSettingsStorage: Sendable {
    /// Where the settings live, for messages (a path, or `legacy:cluster-settings/<id>`).
    var location: String { get }
    /// The stored cluster layer, validated; empty when nothing is stored yet.
    /// - Throws: ``HostError`` `settings_corrupt` (the stored data is left untouched) or `settings_io`.
    func load() throws -> [String: JSONValue]
    /// Replaces the stored cluster layer, atomically.
    func save(_ values: [String: JSONValue]) throws
}

/// `<state-dir>/clusters/<id>/settings.json`: `{"version":1,"settings":{…}}`, mode 0600,
/// written atomically (temporary file, fsync, rename).
public struct SettingsFile: ClusterSettingsStorage {
    public let path: String

    public init(path: String) { self.path = path }

    public var location: String { path }

    public func load() throws -> [String: JSONValue] { try ClusterSettings.load(path) }

    public func save(_ values: [String: JSONValue]) throws { try ClusterSettings.persist(values, to: path) }
}
