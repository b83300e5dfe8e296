import Foundation
import GRDB
import GuildNetCore

/// The legacy host-wide DB (`<state-dir>/guildnet.sqlite`), opened once per host in the
/// `legacy-global` layout and shared by every cluster, exactly as the Go app did. The per-cluster
/// layout never opens it.
public final class LegacyDatabase: Sendable {
    public let path: String
    let queue: DatabaseQueue
    /// The Go app's credential key (`GUILDNET_MASTER_KEY`); `nil` = none given, the all-zero key is used.
    let masterKey: GoCredential.MasterKey?

    /// Opens (creating if missing) the legacy DB and its `kv` table. `masterKey` decrypts the
    /// credentials the Go app encrypted (and encrypts the kubeconfigs stored here).
    public init(stateDirectory: String, busyTimeout: Duration = .seconds(1), masterKey: GoCredential.MasterKey? = nil) throws {
        path = LegacyLayout.databasePath(stateDirectory: stateDirectory)
        self.masterKey = masterKey
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout.seconds)
        configuration.label = "guildnet.legacy"
        do {
            try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try queue.write { db in try db.execute(sql: LegacyLayout.createTableSQL) }
        } catch {
            throw HostError(.dbUnavailable, "cannot open legacy DB \(path): \(error)")
        }
    }

    /// Closes the connection (host shutdown).
    public func close() {
        try? queue.close()
    }

    /// One record's JSON bytes.
    func value(_ location: LegacyLocation) async throws -> [UInt8]? {
        try await queue.read { db in
            try Row.fetchOne(db, sql: "SELECT value FROM kv WHERE collection = ? AND key = ?", arguments: [location.collection, location.key])
                .map { Self.bytes($0["value"]) }
        }
    }

    func upsert(_ location: LegacyLocation, _ value: [UInt8]) async throws {
        try await queue.write { db in
            try db.execute(
                sql: "INSERT INTO kv(collection, key, value) VALUES (?, ?, ?) ON CONFLICT(collection, key) DO UPDATE SET value = excluded.value",
                arguments: [location.collection, location.key, Data(value)])
        }
    }

    func delete(_ location: LegacyLocation) async throws -> Bool {
        try await queue.write { db in
            try db.execute(sql: "DELETE FROM kv WHERE collection = ? AND key = ?", arguments: [location.collection, location.key])
            return db.changesCount > 0
        }
    }

    /// Every record of `collection` whose key starts with `keyPrefix`.
    func records(collection: String, keyPrefix: String) async throws -> [(key: String, value: [UInt8])] {
        try await queue.read { db in
            try Row.fetchAll(
                db, sql: "SELECT key, value FROM kv WHERE collection = ? AND substr(key, 1, ?) = ?",
                arguments: [collection, keyPrefix.utf8.count, keyPrefix]
            ).map { (key: $0["key"], value: Self.bytes($0["value"])) }
        }
    }

    /// Synchronous read/write for settings (short, rare).
    func valueSync(_ location: LegacyLocation) throws -> [UInt8]? {
        try queue.read { db in
            try Row.fetchOne(db, sql: "SELECT value FROM kv WHERE collection = ? AND key = ?", arguments: [location.collection, location.key])
                .map { Self.bytes($0["value"]) }
        }
    }

    func upsertSync(_ location: LegacyLocation, _ value: [UInt8]) throws {
        try queue.write { db in
            try db.execute(
                sql: "INSERT INTO kv(collection, key, value) VALUES (?, ?, ?) ON CONFLICT(collection, key) DO UPDATE SET value = excluded.value",
                arguments: [location.collection, location.key, Data(value)])
        }
    }

    /// Stores a kubeconfig as the Go app does: `credentials` / `cl:<id>:kubeconfig`, the full
    /// credential record, encrypted under the master key when one was given.
    public func storeKubeconfig(_ contents: String, cluster: String) throws {
        do {
            let record: JSONValue
            if let masterKey {
                record = GoCredential.kubeconfigRecord(cluster: cluster, value: try GoCredential.encrypt(contents, key: masterKey), encrypted: true)
            } else {
                record = GoCredential.kubeconfigRecord(cluster: cluster, value: contents, encrypted: false)
            }
            try upsertSync(LegacyLocation(collection: "credentials", key: "cl:\(cluster):kubeconfig"), record.serialized)
        } catch {
            throw HostError(.dbError, "cannot store the kubeconfig of \(cluster) in the legacy DB: \(error)")
        }
    }

    /// The kubeconfig the Go app stored for `cluster` (`credentials` / `cl:<id>:kubeconfig`), or nil,
    /// read with the Go app's rules (``GoCredential/open(_:key:keyName:accept:)``); `isKubeconfig`
    /// validates the plaintext.
    /// - Throws: ``HostError`` `kubeconfig_invalid` when the record cannot be read (never quoting it).
    public func kubeconfig(cluster: String, isKubeconfig: (String) -> Bool) throws -> String? {
        let stored: [UInt8]?
        do {
            stored = try valueSync(LegacyLocation(collection: "credentials", key: "cl:\(cluster):kubeconfig"))
        } catch {
            throw HostError(.dbError, "cannot read the kubeconfig of \(cluster) from the legacy DB: \(error)")
        }
        guard let stored else { return nil }
        guard let json = try? JSONParser.parse(stored), let record = GoCredential.Record(json) else {
            throw HostError(
                .kubeconfigInvalid, "the kubeconfig record of \(cluster) in the legacy DB is not a credential record (a JSON object with a string value)")
        }
        let keyName = masterKey == nil ? "the all-zero key (no GUILDNET_MASTER_KEY given)" : "the given GUILDNET_MASTER_KEY"
        switch GoCredential.open(record, key: masterKey ?? .zero, keyName: keyName, accept: isKubeconfig) {
        case .plain(let text), .decrypted(let text):
            return text
        case .unreadable(let reason):
            throw HostError(.kubeconfigInvalid, "the kubeconfig of \(cluster) in the legacy DB \(reason)")
        }
    }

    /// A value column as bytes whether it was stored as BLOB or TEXT.
    static func bytes(_ value: DatabaseValue) -> [UInt8] {
        switch value.storage {
        case .blob(let data): return Array(data)
        case .string(let string): return Array(string.utf8)
        case .int64(let int): return Array(String(int).utf8)
        case .double(let double): return Array("\(double)".utf8)
        case .null: return Array("null".utf8)
        }
    }
}
