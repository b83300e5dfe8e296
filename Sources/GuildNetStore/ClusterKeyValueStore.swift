import GuildNetCore

/// A cluster's key-value store as the control protocol sees it (`db.*`): the per-cluster SQLite
/// ``ClusterStore``, or the legacy host-wide DB in the `legacy-global` layout.
public protocol ClusterKeyValueStore: ClusterChild {
    /// Where the data lives (a DB path), for status and tests.
    var path: String { get }
    @discardableResult
    func put(_ key: String, _ value: JSONValue) async throws -> StoredItem
    func get(_ key: String) async throws -> StoredItem?
    /// Deletes `key`; returns whether it existed.
    func delete(_ key: String) async throws -> Bool
    /// Keys starting with `prefix`, in key order, strictly after `after` when given.
    func list(prefix: String, after: String?, limit: Int) async throws -> [StoredItem]
}

extension ClusterStore: ClusterKeyValueStore {}
