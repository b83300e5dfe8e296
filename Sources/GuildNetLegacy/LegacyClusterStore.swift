import GuildNetCore
import GuildNetStore

/// A cluster's `db.*` view of the legacy host-wide DB (`--storage-layout legacy-global`): each
/// per-cluster key maps to a legacy (collection, key) by ``LegacyMapping/location(cluster:key:)``,
/// so migrated and legacy data answer the same requests. The legacy table has no timestamps:
/// `created_at` and `updated_at` read 0.
public actor LegacyClusterStore: ClusterKeyValueStore {
    public nonisolated let childID = "store"
    public nonisolated let cluster: ClusterID
    public nonisolated var path: String { database.path }
    private let database: LegacyDatabase
    private var stopped = false

    public init(cluster: ClusterID, database: LegacyDatabase) {
        self.cluster = cluster
        self.database = database
    }

    public func start() async throws {
        stopped = false
        _ = try await database.value(LegacyLocation(collection: "clusters", key: cluster.key))
    }

    public func stop() async { stopped = true }

    public func details() async -> [String: JSONValue] {
        ["path": .string(path), "layout": "legacy-global"]
    }

    private func checkUsable() throws {
        if stopped { throw HostError(.clusterStopping, "cluster \(cluster.key) is stopping") }
    }

    @discardableResult
    public func put(_ key: String, _ value: JSONValue) async throws -> StoredItem {
        try checkUsable()
        let location = LegacyMapping.location(cluster: cluster.key, key: key)
        if location.requiresClusterField && LegacyMapping.namedCluster(in: value.serialized) != cluster.key {
            throw HostError(
                .invalidField, "in the legacy layout a value under \(location.collection)/ must be an object naming cluster \(cluster.key) in \"cluster_id\"")
        }
        do {
            try await database.upsert(location, value.serialized)
        } catch {
            throw HostError.wrapping(error, as: .dbError)
        }
        return StoredItem(key: key, value: value, createdAt: 0, updatedAt: 0)
    }

    public func get(_ key: String) async throws -> StoredItem? {
        try checkUsable()
        let location = LegacyMapping.location(cluster: cluster.key, key: key)
        guard let bytes = try await database.value(location) else { return nil }
        if location.requiresClusterField && LegacyMapping.namedCluster(in: bytes) != cluster.key { return nil }
        return try Self.item(key, bytes)
    }

    public func delete(_ key: String) async throws -> Bool {
        try checkUsable()
        let location = LegacyMapping.location(cluster: cluster.key, key: key)
        if location.requiresClusterField {
            guard let bytes = try await database.value(location), LegacyMapping.namedCluster(in: bytes) == cluster.key else { return false }
        }
        return try await database.delete(location)
    }

    public func list(prefix: String, after: String?, limit: Int) async throws -> [StoredItem] {
        try checkUsable()
        let id = cluster.key
        var found: [(String, [UInt8])] = []
        if let record = try await database.value(LegacyLocation(collection: "clusters", key: id)) {
            found.append(("cluster", record))
        }
        for (key, value) in try await database.records(collection: "published_services", keyPrefix: "\(id):") {
            found.append(("published_services/" + key.dropFirst(id.count + 1), value))
        }
        for (key, value) in try await database.records(collection: "credentials", keyPrefix: "cl:\(id):") where key != "cl:\(id):kubeconfig" {
            found.append(("credentials/" + key.dropFirst(id.count + 4), value))
        }
        for collection in LegacyLayout.maybeClusterCollections.sorted() {
            for (key, value) in try await database.records(collection: collection, keyPrefix: "") where LegacyMapping.namedCluster(in: value) == id {
                found.append(("\(collection)/\(key)", value))
            }
        }
        for (key, value) in try await database.records(collection: LegacyLayout.clusterKVCollection, keyPrefix: "\(id)/") {
            found.append((String(key.dropFirst(id.count + 1)), value))
        }
        let selected =
            found
            .filter { entry in entry.0.hasPrefix(prefix) && (after.map { entry.0 > $0 } ?? true) }
            .sorted { $0.0 < $1.0 }
            .prefix(limit)
        var items: [StoredItem] = []
        for (key, bytes) in selected { items.append(try Self.item(key, bytes)) }
        return items
    }

    private static func item(_ key: String, _ bytes: [UInt8]) throws -> StoredItem {
        guard let value = try? JSONParser.parse(bytes) else {
            throw HostError(.dbCorrupt, "legacy value of key \(String(reflecting: key)) is not valid JSON")
        }
        return StoredItem(key: key, value: value, createdAt: 0, updatedAt: 0)
    }
}
