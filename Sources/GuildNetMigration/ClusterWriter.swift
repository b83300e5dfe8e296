import Crypto
import Foundation
import GRDB
import GuildNetCore
import GuildNetLegacy
import GuildNetStateDirectory
import GuildNetStore

/// Writes one cluster's data. Crash safety rests on one rule: the runtime only ever serves
/// `local.db`, and `local.db` is only ever replaced by `rename(2)` of a complete, verified staging
/// file. Every other file is written atomically (temporary file, fsync, rename).
final class ClusterWriter {
    private let source: Database
    private let stateDirectory: String
    private let resolver: RecordResolver
    private let credentialKey: CredentialKey
    private let migrationID: String
    private let sourceSHA256: String
    private let environment: [String: String]
    private let progress: ProgressReporter
    private let fetch: Statement

    init(
        source: Database, stateDirectory: String, resolver: RecordResolver, credentialKey: CredentialKey,
        migrationID: String, sourceSHA256: String, environment: [String: String], progress: ProgressReporter
    ) throws {
        self.source = source
        self.stateDirectory = stateDirectory
        self.resolver = resolver
        self.credentialKey = credentialKey
        self.migrationID = migrationID
        self.sourceSHA256 = sourceSHA256
        self.environment = environment
        self.progress = progress
        fetch = try source.makeStatement(sql: "SELECT collection, key, value FROM kv WHERE rowid = ?")
    }

    /// An order-independent checksum: XOR of SHA-256(len(key) key len(value) value) per row.
    struct RowChecksum {
        private(set) var bytes = [UInt8](repeating: 0, count: 32)
        private(set) var count = 0

        mutating func add(key: String, value: String) {
            var hasher = SHA256()
            Self.feed(&hasher, key)
            Self.feed(&hasher, value)
            for (index, byte) in hasher.finalize().enumerated() { bytes[index] ^= byte }
            count += 1
        }

        private static func feed(_ hasher: inout SHA256, _ text: String) {
            var text = text
            text.withUTF8 { buffer in
                var length = UInt64(buffer.count).bigEndian
                withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
                hasher.update(bufferPointer: UnsafeRawBufferPointer(buffer))
            }
        }

        var hex: String { MigrationFiles.hex(bytes) }
    }

    private func prepared(_ rowid: Int64) throws -> (legacyKey: String, record: PreparedRecord) {
        guard let row = try Row.fetchOne(fetch, arguments: [rowid]) else {
            throw HostError(.verificationFailed, "legacy row \(rowid) vanished during the migration")
        }
        let collection = LegacySource.text(row[0]) ?? ""
        let key = LegacySource.text(row[1]) ?? ""
        let record = try PreparedRecord.prepare(
            collection: collection, key: key, value: LegacySource.bytes(row[2]), resolver: resolver, credentialKey: credentialKey, validate: false)
        return ("\(collection)/\(key)", record)
    }

    func write(_ plan: ClusterPlan) throws -> ClusterResult {
        let paths = ClusterPaths(stateDirectory: stateDirectory, cluster: plan.id)
        try MigrationFiles.makeDirectory(paths.directory, mode: 0o700)
        try ClusterIdentity.check(paths, belongsTo: plan.id)
        var result = ClusterResult(
            name: plan.name, key: plan.id.key, storeRows: 0, checksum: "", settingsKeys: 0, kubeconfig: false,
            credentials: plan.credentials, files: [])

        // 1. The staging DB: a copy of the current local.db (if any) with the legacy rows upserted.
        let staging = paths.database + ".migrating"
        for suffix in ["", "-journal", "-wal", "-shm"] { try MigrationFiles.removeIfPresent(staging + suffix) }
        let queue = try openStaging(staging, existing: paths.database)
        do {
            let checksum = try fill(queue, plan: plan)
            result.storeRows = checksum.count
            result.checksum = checksum.hex
            try queue.close()
        } catch {
            try? queue.close()
            throw error
        }
        for suffix in ["-journal", "-wal"] where (MigrationFiles.size(staging + suffix) ?? 0) > 0 {
            throw HostError(.verificationFailed, "staging database \(staging) left a non-empty \(suffix) file")
        }
        try MigrationFiles.removeIfPresent(staging + "-shm")
        try MigrationFiles.removeIfPresent(staging + "-wal")

        // 2. Identity, settings, kubeconfig: each atomic; all before local.db appears.
        if let written = try writeIdentity(paths: paths, cluster: plan.id) { result.files.append(written) }
        if let rowid = plan.settingsRowID, case .settings(_, let values) = try prepared(rowid).record {
            result.files.append(try mergeSettings(values, into: paths.settings))
            result.settingsKeys = values.count
            progress.advance()
        }
        if let rowid = plan.kubeconfigRowID, case .kubeconfig(_, let bytes, _) = try prepared(rowid).record {
            let path = paths.kubeconfig
            try MigrationFiles.writeAtomically(bytes, to: path, mode: 0o600)
            result.files.append((path, try MigrationFiles.sha256(ofFile: path)))
            result.kubeconfig = true
            progress.advance()
        }

        // 3. The commit point of the cluster: rename the verified staging DB over local.db.
        CrashPoint.beforeRename.reached(environment)
        if (MigrationFiles.size(paths.database + "-wal") ?? 0) > 0 {
            throw HostError(.verificationFailed, "\(paths.database)-wal is not empty: is a daemon using this cluster?")
        }
        try MigrationFiles.removeIfPresent(paths.database + "-wal")
        try MigrationFiles.removeIfPresent(paths.database + "-shm")
        try MigrationFiles.renameDurably(staging, to: paths.database)
        chmod(paths.database, 0o600)
        CrashPoint.afterRename.reached(environment)
        result.files.append((paths.database, try MigrationFiles.sha256(ofFile: paths.database)))
        return result
    }

    /// Creates the staging DB from the existing `local.db` (SQLite online backup: every table,
    /// consistent) or empty, in rollback-journal mode, with the store schema applied.
    private func openStaging(_ staging: String, existing: String) throws -> DatabaseQueue {
        let queue = try DatabaseQueue(path: staging)
        do {
            chmod(staging, 0o600)
            if MigrationFiles.exists(existing) {
                let current = try DatabaseQueue(path: existing)
                do {
                    try current.backup(to: queue)
                    try current.close()
                } catch {
                    try? current.close()
                    throw error
                }
            }
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA journal_mode = DELETE")
            }
            try StoreSchema.migrator.migrate(queue)
            return queue
        } catch {
            try? queue.close()
            throw HostError.wrapping(error, as: .dbError)
        }
    }

    /// Upserts the cluster's store rows and its migration record in one transaction, then
    /// verifies count and checksum of what the DB holds against what was written.
    private func fill(_ queue: DatabaseQueue, plan: ClusterPlan) throws -> RowChecksum {
        let now = Date().timeIntervalSince1970
        return try queue.inDatabase { db in
            // Keys are collected in temp tables, not in memory: a cluster may have millions of rows.
            try db.execute(sql: "CREATE TEMP TABLE migrated (key TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID")
            try db.execute(sql: "CREATE TEMP TABLE legacy_keys (key TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID")
            defer {
                try? db.execute(sql: "DROP TABLE IF EXISTS temp.migrated")
                try? db.execute(sql: "DROP TABLE IF EXISTS temp.legacy_keys")
            }
            var expected = RowChecksum()
            var legacyRecords = 0
            try db.inTransaction(.immediate) {
                let rememberLegacy = try db.makeStatement(sql: "INSERT OR IGNORE INTO temp.legacy_keys(key) VALUES (?)")
                let upsert = try db.makeStatement(
                    sql: """
                        INSERT INTO kv(key, value, created_at, updated_at) VALUES (?, ?, ?, ?)
                        ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                        WHERE kv.value IS NOT excluded.value
                        """)
                let remember = try db.makeStatement(sql: "INSERT OR IGNORE INTO temp.migrated(key) VALUES (?)")
                let half = plan.storeRowIDs.count / 2
                for (index, rowid) in plan.storeRowIDs.enumerated() {
                    if index == half && index > 0 { CrashPoint.midCluster.reached(environment) }
                    let (legacyKey, record) = try prepared(rowid)
                    guard case .kv(let cluster, let key, let text, _) = record, cluster == plan.name else {
                        throw HostError(.verificationFailed, "legacy record \(legacyKey) no longer maps to cluster \(plan.name)")
                    }
                    try upsert.execute(arguments: [key, text, now, now])
                    try remember.execute(arguments: [key])
                    guard db.changesCount == 1 else {
                        throw HostError(
                            .verificationFailed,
                            "two legacy records of cluster \(plan.name) map to key \(String(reflecting: key)); map one of them elsewhere with --mapping")
                    }
                    expected.add(key: key, value: text)
                    try rememberLegacy.execute(arguments: [legacyKey])
                    legacyRecords += 1
                    progress.advance()
                }
                for rowid in [plan.settingsRowID, plan.kubeconfigRowID].compactMap({ $0 }) {
                    try rememberLegacy.execute(arguments: [try prepared(rowid).legacyKey])
                    legacyRecords += 1
                }
                try recordMigration(db, legacyRecords: legacyRecords, checksum: expected)
                return .commit
            }
            // Verify: every migrated key holds exactly what was written.
            var actual = RowChecksum()
            let rows = try Row.fetchCursor(db, sql: "SELECT kv.key, kv.value FROM kv JOIN temp.migrated AS m ON kv.key = m.key")
            while let row = try rows.next() {
                let key: String = row[0]
                let value: String = row[1]
                actual.add(key: key, value: value)
            }
            guard actual.count == expected.count, actual.bytes == expected.bytes, expected.count == plan.storeRowIDs.count else {
                throw HostError(
                    .verificationFailed,
                    "cluster \(plan.name): staging DB holds \(actual.count) migrated rows (expected \(plan.storeRowIDs.count)), checksum \(actual.bytes == expected.bytes ? "equal" : "differs")"
                )
            }
            return expected
        }
    }

    /// Meta rows: `migration.id` (latest run), `migration.summary` and `migration.legacy_keys`
    /// (every legacy `collection/key` ever migrated into this cluster, sorted: this run's, from
    /// `temp.legacy_keys`, merged with the previous list there by SQLite, streamed into the JSON).
    private func recordMigration(_ db: Database, legacyRecords: Int, checksum: RowChecksum) throws {
        if let previous = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'migration.legacy_keys'"),
            case .array(let items)? = try? JSONParser.parse(previous)
        {
            let remember = try db.makeStatement(sql: "INSERT OR IGNORE INTO temp.legacy_keys(key) VALUES (?)")
            for item in items { if let text = item.stringValue { try remember.execute(arguments: [text]) } }
        }
        var list = "["
        let keys = try String.fetchCursor(db, sql: "SELECT key FROM temp.legacy_keys ORDER BY key")
        var first = true
        while let key = try keys.next() {
            if !first { list += "," }
            first = false
            list += JSONValue.string(key).jsonString
        }
        list += "]"
        let summary: JSONValue = .object([
            "migration_id": .string(migrationID),
            "migrated_at": .string(MigrationFiles.isoTimestamp()),
            "legacy_records": .int(Int64(legacyRecords)),
            "store_rows": .int(Int64(checksum.count)),
            "checksum": .string(checksum.hex),
            "source_sha256": .string(sourceSHA256),
        ])
        let upsert = "INSERT INTO meta(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value"
        try db.execute(sql: upsert, arguments: ["migration.id", JSONValue.string(migrationID).jsonString])
        try db.execute(sql: upsert, arguments: ["migration.summary", summary.jsonString])
        try db.execute(sql: upsert, arguments: ["migration.legacy_keys", list])
    }

    /// Writes `cluster.json` when missing (an existing one was checked before anything was written).
    private func writeIdentity(paths: ClusterPaths, cluster: ClusterID) throws -> (String, String)? {
        guard !AtomicFile.exists(paths.identity) else { return nil }
        try ClusterIdentity(cluster).write(to: paths)
        return (paths.identity, try MigrationFiles.sha256(ofFile: paths.identity))
    }

    /// Merges `values` into `settings.json` (legacy values win), atomically, mode 0600.
    private func mergeSettings(_ values: [String: JSONValue], into path: String) throws -> (String, String) {
        var current: [String: JSONValue] = [:]
        do {
            if let bytes = try AtomicFile.read(path) { current = try SettingsDocument.decode(bytes) }
        } catch let problem as SettingsDocument.Problem {
            throw HostError(.settingsCorrupt, "\(path) is invalid: \(problem.reason); fix or move it aside before migrating")
        } catch let failure as FileFailure {
            throw HostError(.io, "cannot read \(failure.description)")
        }
        for (key, value) in values { current[key] = value }
        do {
            try AtomicFile.write(SettingsDocument.encode(current), to: path)
        } catch {
            throw HostError(.io, "cannot write \(error.description)")
        }
        return (path, try MigrationFiles.sha256(ofFile: path))
    }
}
