import Crypto
import Foundation
import GRDB
import GuildNetCore
import GuildNetLegacy
import GuildNetStateDirectory

/// Options of `hostapp migrate-db`.
public struct MigrationOptions: Sendable {
    public var stateDirectory: String
    /// `nil` = every cluster (`--all`); otherwise only this cluster's records (`--cluster`).
    public var cluster: String?
    public var mappingFile: String?
    /// Default `<state-dir>/backups/<timestamp>/`.
    public var backupDirectory: String?
    /// `false` = dry run.
    public var commit: Bool
    public var operatorName: String?
    public var pruneSource = false
    public var masterKeyVariable = "GUILDNET_MASTER_KEY"
    /// A file holding the master key (wins over ``masterKeyVariable``); trailing line breaks are ignored.
    public var masterKeyFile: String?
    /// Recorded in the audit log (contains no secret: the key is read from the environment).
    public var commandLine: [String] = []
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    var progress: ProgressReporter.Mode = .automatic

    public init(stateDirectory: String, cluster: String?, commit: Bool) {
        self.stateDirectory = stateDirectory
        self.cluster = cluster
        self.commit = commit
    }

    /// No progress output on standard error.
    public mutating func quiet() { progress = .quiet }
}

/// What a migration did for one cluster.
public struct ClusterResult: Sendable {
    public var name: String
    public var key: String
    /// Rows of `local.db` written (inserted or updated) from legacy records.
    public var storeRows: Int
    /// XOR of SHA-256(key, value) over those rows: order-independent, checked against `local.db`.
    public var checksum: String
    public var settingsKeys: Int
    public var kubeconfig: Bool
    public var credentials: [CredentialNote]
    /// (path, SHA-256) of every file written.
    public var files: [(path: String, sha256: String)]
}

/// What `migrate-db` did.
public struct MigrationReport: Sendable {
    public var migrationID: String
    public var plan: MigrationPlan
    public var committed: Bool
    public var backup: BackupManifest?
    public var backupDirectory: String?
    public var clusters: [ClusterResult] = []
    public var prunedRows = 0
    public var masterKeyGiven: Bool
    /// The master key given was longer than 32 bytes (only its first 32 bytes are used, as by the Go app).
    public var masterKeyTruncated: Bool
    public var seconds: Double = 0

    init(migrationID: String, plan: MigrationPlan, committed: Bool, masterKey: GoCredential.MasterKey?) {
        self.migrationID = migrationID
        self.plan = plan
        self.committed = committed
        masterKeyGiven = masterKey != nil
        masterKeyTruncated = masterKey?.truncated ?? false
    }

    public func render() -> String {
        var lines = [committed ? "migration \(migrationID) committed" : "dry run: nothing was written", plan.render(masterKeyGiven: masterKeyGiven)]
        if masterKeyTruncated {
            lines.append("note: the master key is longer than 32 bytes; only its first 32 bytes are used, as the Go app did")
        }
        if let backup, let backupDirectory {
            lines.append("backup: \(backupDirectory) (\(backup.rows) rows, sha256 \(backup.sha256), verified)")
        }
        for cluster in clusters {
            let credentials = cluster.credentials.map { "\($0.legacyKey)=\($0.handling.rawValue)" }.joined(separator: ", ")
            lines.append(
                "migrated \(cluster.name): \(cluster.storeRows) store rows (checksum \(cluster.checksum.prefix(16))…), \(cluster.settingsKeys) settings, kubeconfig \(cluster.kubeconfig ? "yes" : "no")"
                    + (credentials.isEmpty ? "" : ", credentials: \(credentials)"))
        }
        if prunedRows > 0 { lines.append("pruned \(prunedRows) migrated rows from the source") }
        if committed { lines.append(String(format: "done in %.2f s", seconds)) }
        return lines.joined(separator: "\n")
    }
}

/// `hostapp migrate-db`: moves the legacy host-wide DB's per-cluster records into per-cluster
/// DBs. See docs/migration-rollback.md.
///
/// Commit, in order: take `hostapp.lock` (held to the end); open the source read-only in one read
/// transaction (a consistent snapshot for the whole run); build the plan; back the source up and
/// verify the backup; then per cluster write a staging `local.db.migrating` (the existing
/// `local.db` copied in, legacy rows upserted in one transaction, counts and checksum verified),
/// write `cluster.json`, `settings.json` and `kubeconfig` atomically, and rename the staging DB
/// over `local.db`. The source is never written, except by `--prune-source` at the very end.
public enum Migration {
    public static func run(_ options: MigrationOptions) throws -> MigrationReport {
        let started = ContinuousClock.now
        let stateDirectory = options.stateDirectory
        let sourcePath = LegacyLayout.databasePath(stateDirectory: stateDirectory)
        let audit = AuditLog(stateDirectory: stateDirectory)
        let migrationID = "mig-\(MigrationFiles.compactTimestamp())-\(randomHex(4))"
        var entry = AuditLog.header(event: "migrate-db", operatorName: options.operatorName, commandLine: options.commandLine, environment: options.environment)
        entry["migration_id"] = .string(migrationID)
        entry["mode"] = .string(options.commit ? "commit" : "dry-run")

        // Options are checked before anything is locked or written.
        if let cluster = options.cluster {
            do {
                _ = try ClusterID(name: cluster)
            } catch {
                throw HostError(.migrationUsage, "--cluster \(String(reflecting: cluster)) is not a valid cluster name: \(HostError.wrapping(error).message)")
            }
        }
        var mapping = MappingCSV()
        if let file = options.mappingFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw HostError(.mappingInvalid, "cannot read mapping file \(file)")
            }
            mapping = try MappingCSV.parse(String(decoding: data, as: UTF8.self))
        }
        let credentialKey = CredentialKey(given: try masterKey(options))
        if options.pruneSource && !options.commit {
            throw HostError(.migrationUsage, "--prune-source needs --commit")
        }

        guard options.commit else {
            let source = try LegacySource.openReadOnly(sourcePath)
            defer { try? source.close() }
            let plan = try source.read { db in
                try MigrationPlan.build(db: db, sourcePath: sourcePath, mapping: mapping, selected: options.cluster, credentialKey: credentialKey).0
            }
            return MigrationReport(migrationID: migrationID, plan: plan, committed: false, masterKey: credentialKey.given)
        }

        let lock: StateDirectoryLock
        do {
            lock = try StateDirectoryLock(stateDirectory: stateDirectory)
        } catch {
            let hostError = HostError.wrapping(error)
            guard hostError.code == .stateDirLocked else { throw hostError }
            throw HostError(
                .stateDirLocked,
                "refusing to migrate: a hostapp daemon (or another migration) holds \(stateDirectory)/hostapp.lock; stop it first (\(hostError.message))")
        }
        defer { withExtendedLifetime(lock) {} }

        var files: [JSONValue] = []
        do {
            let report = try commit(
                options: options, sourcePath: sourcePath, mapping: mapping, credentialKey: credentialKey,
                migrationID: migrationID, started: started, files: &files, entry: &entry)
            entry["result"] = .string("ok")
            entry["files"] = .array(files)
            try audit.append(entry)
            return report
        } catch {
            let hostError = HostError.wrapping(error)
            entry["result"] = .string("failed")
            entry["error_code"] = .string(hostError.code.rawValue)
            entry["error"] = .string(hostError.message)
            entry["files"] = .array(files)
            try? audit.append(entry)
            throw hostError
        }
    }

    private static func commit(
        options: MigrationOptions, sourcePath: String, mapping: MappingCSV, credentialKey: CredentialKey,
        migrationID: String, started: ContinuousClock.Instant, files: inout [JSONValue], entry: inout [String: JSONValue]
    ) throws -> MigrationReport {
        let backupDirectory =
            options.backupDirectory
            ?? StateDirectory(options.stateDirectory).backups + "/" + MigrationFiles.compactTimestamp()
        let source = try LegacySource.openReadOnly(sourcePath)
        defer { try? source.close() }
        var report = MigrationReport(migrationID: migrationID, plan: MigrationPlan(sourcePath: sourcePath), committed: true, masterKey: credentialKey.given)
        var collected: [JSONValue] = []
        try source.inDatabase { db in
            try db.inTransaction(.deferred) {
                let (plan, resolver) = try MigrationPlan.build(
                    db: db, sourcePath: sourcePath, mapping: mapping, selected: options.cluster, credentialKey: credentialKey)
                report.plan = plan
                let manifest = try LegacyBackup.create(from: db, sourcePath: sourcePath, into: backupDirectory, migrationID: migrationID)
                report.backup = manifest
                report.backupDirectory = backupDirectory
                collected.append(AuditLog.file(backupDirectory + "/" + manifest.file, role: "backed_up", sha256: manifest.sha256))
                CrashPoint.afterBackup.reached(options.environment)

                let progress = ProgressReporter(label: "migrating", total: plan.migratedRecords, mode: options.progress)
                let writer = try ClusterWriter(
                    source: db, stateDirectory: options.stateDirectory, resolver: resolver, credentialKey: credentialKey,
                    migrationID: migrationID, sourceSHA256: manifest.sha256, environment: options.environment, progress: progress)
                for cluster in plan.clusters {
                    let result = try writer.write(cluster)
                    report.clusters.append(result)
                    for file in result.files { collected.append(AuditLog.file(file.path, role: "written", sha256: file.sha256)) }
                }
                progress.finish()
                return .commit
            }
        }
        files = collected
        if options.pruneSource {
            // Only after every cluster verified and the backup verified (above, in the same run).
            report.prunedRows = try prune(sourcePath: sourcePath, clusters: report.plan.clusters)
        }
        report.seconds = ProgressReporter.seconds(ContinuousClock.now - started)
        entry["backup"] = .string(backupDirectory)
        entry["counts"] = .object([
            "records": .int(Int64(report.plan.totalRecords)),
            "migrated": .int(Int64(report.plan.migratedRecords)),
            "host_global": .int(Int64(report.plan.hostGlobal)),
            "unmapped": .int(Int64(report.plan.unmappedCount)),
            "other_clusters": .int(Int64(report.plan.otherClusters)),
            "pruned": .int(Int64(report.prunedRows)),
        ])
        var checksums: [String: JSONValue] = [
            "source_sha256": .string(report.backup?.sha256 ?? ""),
            "source_content_sha256": .string(report.backup?.contentSHA256 ?? ""),
        ]
        var clusters: [String: JSONValue] = [:]
        for cluster in report.clusters {
            clusters[cluster.name] = .object([
                "key": .string(cluster.key),
                "store_rows": .int(Int64(cluster.storeRows)),
                "checksum": .string(cluster.checksum),
                "settings_keys": .int(Int64(cluster.settingsKeys)),
                "kubeconfig": .bool(cluster.kubeconfig),
                "credentials": .object(Dictionary(uniqueKeysWithValues: cluster.credentials.map { ($0.legacyKey, JSONValue.string($0.handling.rawValue)) })),
            ])
        }
        checksums["clusters"] = .object(clusters)
        entry["checksums"] = .object(checksums)
        return report
    }

    /// Deletes the migrated rows from the source, in one transaction.
    private static func prune(sourcePath: String, clusters: [ClusterPlan]) throws -> Int {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        let queue = try DatabaseQueue(path: sourcePath, configuration: configuration)
        defer { try? queue.close() }
        return try queue.write { db in
            let statement = try db.makeStatement(sql: "DELETE FROM kv WHERE rowid = ?")
            var count = 0
            for cluster in clusters {
                for rowid in cluster.allRowIDs {
                    try statement.execute(arguments: [rowid])
                    count += db.changesCount
                }
            }
            return count
        }
    }

    /// The master key given: `--master-key-file`, else the variable; `nil` when neither (or empty).
    static func masterKey(_ options: MigrationOptions) throws -> GoCredential.MasterKey? {
        if let file = options.masterKeyFile {
            guard let text = GoCredential.MasterKey.contents(ofFile: file) else {
                throw HostError(.migrationUsage, "cannot read the master key file \(file)")
            }
            return text.isEmpty ? nil : GoCredential.MasterKey(string: text)
        }
        guard let text = options.environment[options.masterKeyVariable], !text.isEmpty else { return nil }
        return GoCredential.MasterKey(string: text)
    }

    static func randomHex(_ bytes: Int) -> String {
        MigrationFiles.hex((0..<bytes).map { _ in UInt8.random(in: 0...255) })
    }

    // MARK: Rollback

    /// Options of `hostapp rollback-db`.
    public struct RollbackOptions: Sendable {
        public var stateDirectory: String
        public var backupDirectory: String
        public var operatorName: String?
        public var commandLine: [String] = []
        public var environment: [String: String] = ProcessInfo.processInfo.environment

        public init(stateDirectory: String, backupDirectory: String) {
            self.stateDirectory = stateDirectory
            self.backupDirectory = backupDirectory
        }
    }

    public struct RollbackReport: Sendable {
        public var restoredPath: String
        public var manifest: BackupManifest
        /// Stale SQLite side files (`-journal`, `-wal`) moved aside so they cannot replay onto the restored file.
        public var movedAside: [String]

        public func render() -> String {
            var lines = ["restored \(restoredPath) from backup (\(manifest.rows) rows, sha256 \(manifest.sha256), verified)"]
            for path in movedAside { lines.append("moved aside stale \(path)") }
            lines.append("restart the daemon on the legacy layout: hostapp serve --state-dir <dir> --storage-layout legacy-global")
            return lines.joined(separator: "\n")
        }
    }

    /// `hostapp rollback-db`: verifies the backup against its manifest and restores
    /// `guildnet.sqlite` atomically (copy to a temporary file in the same directory, fsync, rename).
    public static func rollback(_ options: RollbackOptions) throws -> RollbackReport {
        let audit = AuditLog(stateDirectory: options.stateDirectory)
        var entry = AuditLog.header(
            event: "rollback-db", operatorName: options.operatorName, commandLine: options.commandLine, environment: options.environment)
        entry["backup"] = .string(options.backupDirectory)
        let lock: StateDirectoryLock
        do {
            lock = try StateDirectoryLock(stateDirectory: options.stateDirectory)
        } catch {
            let hostError = HostError.wrapping(error)
            guard hostError.code == .stateDirLocked else { throw hostError }
            throw HostError(
                .stateDirLocked,
                "refusing to roll back: a hostapp daemon (or a migration) holds \(options.stateDirectory)/hostapp.lock; stop it first (\(hostError.message))")
        }
        defer { withExtendedLifetime(lock) {} }
        do {
            let manifest = try LegacyBackup.verify(directory: options.backupDirectory)
            let destination = LegacyLayout.databasePath(stateDirectory: options.stateDirectory)
            let temporary = destination + ".restoring"
            let copied = try MigrationFiles.copy(options.backupDirectory + "/" + manifest.file, to: temporary, mode: 0o600)
            guard copied == manifest.sha256 else {
                try? MigrationFiles.removeIfPresent(temporary)
                throw HostError(.backupInvalid, "backup changed while it was copied")
            }
            var movedAside: [String] = []
            let stamp = MigrationFiles.compactTimestamp()
            for suffix in ["-journal", "-wal"] where MigrationFiles.exists(destination + suffix) {
                let aside = destination + suffix + ".before-rollback-" + stamp
                guard rename(destination + suffix, aside) == 0 else {
                    throw HostError(.io, "cannot move aside \(destination + suffix): \(MigrationFiles.errnoText())")
                }
                movedAside.append(destination + suffix)
            }
            try MigrationFiles.removeIfPresent(destination + "-shm")
            try MigrationFiles.renameDurably(temporary, to: destination)
            entry["result"] = .string("ok")
            entry["files"] = .array([
                AuditLog.file(options.backupDirectory + "/" + manifest.file, role: "verified", sha256: manifest.sha256),
                AuditLog.file(destination, role: "restored", sha256: try MigrationFiles.sha256(ofFile: destination)),
            ])
            entry["counts"] = .object(["rows": .int(Int64(manifest.rows))])
            entry["checksums"] = .object(["content_sha256": .string(manifest.contentSHA256)])
            entry["moved_aside"] = .array(movedAside.map { .string($0) })
            try audit.append(entry)
            return RollbackReport(restoredPath: destination, manifest: manifest, movedAside: movedAside)
        } catch {
            let hostError = HostError.wrapping(error)
            entry["result"] = .string("failed")
            entry["error_code"] = .string(hostError.code.rawValue)
            entry["error"] = .string(hostError.message)
            try? audit.append(entry)
            throw hostError
        }
    }
}
