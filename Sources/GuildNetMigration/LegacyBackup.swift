import Crypto
import Foundation
import GRDB
import GuildNetCore
import GuildNetLegacy

/// Reading the legacy DB: read-only connections and the content digest.
enum LegacySource {
    static func openReadOnly(_ path: String) throws -> DatabaseQueue {
        guard MigrationFiles.exists(path) else {
            throw HostError(.legacyDBMissing, "legacy database \(path) does not exist")
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        configuration.label = "guildnet.migration.source"
        do {
            return try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw HostError(.legacyDBMissing, "cannot open legacy database \(path): \(error)")
        }
    }

    /// Bytes of a column value (TEXT or BLOB; an INTEGER as its decimal text); `nil` otherwise.
    static func bytes(_ value: DatabaseValue) -> [UInt8]? {
        switch value.storage {
        case .blob(let data): [UInt8](data)
        case .string(let text): Array(text.utf8)
        case .int64(let number): Array(String(number).utf8)
        case .double, .null: nil
        }
    }

    static func text(_ value: DatabaseValue) -> String? {
        switch value.storage {
        case .string(let text): text
        case .blob(let data): String(bytes: data, encoding: .utf8)
        case .int64(let number): String(number)
        case .double, .null: nil
        }
    }

    /// Row count and SHA-256 over every row of `kv` in (collection, key) order, each column
    /// encoded as a type tag, an 8-byte length and its bytes.
    static func digest(_ db: Database) throws -> (rows: Int, sha256: String) {
        var hasher = SHA256()
        var rows = 0
        let cursor = try Row.fetchCursor(db, sql: "SELECT collection, key, value FROM kv ORDER BY collection, key")
        while let row = try cursor.next() {
            rows += 1
            for index in 0..<3 {
                let value: DatabaseValue = row[index]
                update(&hasher, value)
            }
        }
        return (rows, MigrationFiles.hex(hasher.finalize()))
    }

    private static func update(_ hasher: inout SHA256, _ value: DatabaseValue) {
        func put(_ tag: UInt8, _ bytes: some Collection<UInt8>) {
            var header: [UInt8] = [tag]
            let count = UInt64(bytes.count)
            for shift in stride(from: 56, through: 0, by: -8) { header.append(UInt8(truncatingIfNeeded: count >> UInt64(shift))) }
            hasher.update(data: header)
            hasher.update(data: Array(bytes))
        }
        switch value.storage {
        case .null: put(0, [])
        case .int64(let number): put(1, Array(String(number).utf8))
        case .double(let number): put(2, Array(String(number.bitPattern).utf8))
        case .string(let text): put(3, Array(text.utf8))
        case .blob(let data): put(4, [UInt8](data))
        }
    }
}

/// The record of one backup: `<backup-dir>/manifest.json`, written last (so a backup without a
/// manifest is incomplete and is never restored).
public struct BackupManifest: Codable, Sendable, Equatable {
    public var format: Int
    public var createdAt: String
    public var migrationID: String
    public var sourcePath: String
    /// File name of the copy inside the backup directory.
    public var file: String
    public var size: Int64
    public var sha256: String
    public var rows: Int
    public var contentSHA256: String
    public var method: String

    enum CodingKeys: String, CodingKey {
        case format
        case createdAt = "created_at"
        case migrationID = "migration_id"
        case sourcePath = "source_path"
        case file, size, sha256, rows
        case contentSHA256 = "content_sha256"
        case method
    }

    public static let fileName = "manifest.json"
}

/// Backups of the legacy DB: creation and verification.
public enum LegacyBackup {
    /// Copies the legacy DB into `directory` while `db` holds a read transaction on it (so the
    /// copy is consistent), then verifies it: the copy's SHA-256 against the bytes read, and its row
    /// count and content digest against the source's. The manifest is written last.
    static func create(
        from db: Database, sourcePath: String, into directory: String, migrationID: String
    ) throws -> BackupManifest {
        if MigrationFiles.exists(directory + "/" + BackupManifest.fileName) {
            throw HostError(.backupInvalid, "backup directory \(directory) already holds a backup; choose another --backup")
        }
        try MigrationFiles.makeDirectory(directory, mode: 0o700)
        let copyPath = directory + "/" + LegacyLayout.fileName
        let journalMode = (try String.fetchOne(db, sql: "PRAGMA journal_mode")) ?? "delete"
        let method: String
        var copiedSHA: String?
        if journalMode.lowercased() == "wal" {
            // The main file alone is not consistent in WAL mode: use SQLite's online backup.
            method = "sqlite-online-backup"
            try MigrationFiles.removeIfPresent(copyPath)
            let destination = try DatabaseQueue(path: copyPath)
            try destination.writeWithoutTransaction { destDB in try db.backup(to: destDB) }
            try destination.writeWithoutTransaction { try $0.execute(sql: "PRAGMA journal_mode = DELETE") }
            try destination.close()
            chmod(copyPath, 0o600)
        } else {
            // The read transaction holds SHARED: no writer can commit while the file is copied.
            _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master")
            method = "file-copy-under-read-lock"
            copiedSHA = try MigrationFiles.copy(sourcePath, to: copyPath, mode: 0o600)
        }
        MigrationFiles.syncDirectory(directory)
        let sha = try MigrationFiles.sha256(ofFile: copyPath)
        if let copiedSHA, copiedSHA != sha {
            throw HostError(.backupInvalid, "backup \(copyPath) does not match the source bytes (SHA-256 differs)")
        }
        let source = try LegacySource.digest(db)
        let copy = try digest(ofFile: copyPath)
        guard copy.rows == source.rows, copy.sha256 == source.sha256 else {
            throw HostError(
                .backupInvalid,
                "backup \(copyPath) does not match the source: \(copy.rows) rows vs \(source.rows), content checksum \(copy.sha256 == source.sha256 ? "equal" : "differs")"
            )
        }
        let manifest = BackupManifest(
            format: 1, createdAt: MigrationFiles.isoTimestamp(), migrationID: migrationID, sourcePath: sourcePath,
            file: LegacyLayout.fileName, size: MigrationFiles.size(copyPath) ?? 0, sha256: sha,
            rows: source.rows, contentSHA256: source.sha256, method: method)
        try writeManifest(manifest, to: directory)
        return manifest
    }

    static func writeManifest(_ manifest: BackupManifest, to directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? encoder.encode(manifest) else { throw HostError(.internalError, "cannot encode the backup manifest") }
        try MigrationFiles.writeAtomically([UInt8](data), to: directory + "/" + BackupManifest.fileName, mode: 0o600)
    }

    /// Row count and content digest of a legacy DB file.
    static func digest(ofFile path: String) throws -> (rows: Int, sha256: String) {
        let queue = try LegacySource.openReadOnly(path)
        defer { try? queue.close() }
        return try queue.read { try LegacySource.digest($0) }
    }

    /// Reads `<directory>/manifest.json` and checks the copy against it: SHA-256 of the file, row
    /// count and content digest.
    /// - Throws: ``HostError`` `backup_invalid` naming what does not match.
    public static func verify(directory: String) throws -> BackupManifest {
        let manifestPath = directory + "/" + BackupManifest.fileName
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw HostError(.backupInvalid, "\(manifestPath) is missing: \(directory) is not a complete backup")
        }
        guard let manifest = try? JSONDecoder().decode(BackupManifest.self, from: data), manifest.format == 1,
            !manifest.file.contains("/")
        else {
            throw HostError(.backupInvalid, "\(manifestPath) is not a valid backup manifest")
        }
        let copyPath = directory + "/" + manifest.file
        guard MigrationFiles.exists(copyPath) else { throw HostError(.backupInvalid, "backup file \(copyPath) is missing") }
        let sha = try MigrationFiles.sha256(ofFile: copyPath)
        guard sha == manifest.sha256 else {
            throw HostError(.backupInvalid, "backup file \(copyPath) has SHA-256 \(sha), the manifest says \(manifest.sha256)")
        }
        let content: (rows: Int, sha256: String)
        do {
            content = try digest(ofFile: copyPath)
        } catch {
            throw HostError(.backupInvalid, "backup file \(copyPath) cannot be read as a legacy database: \(HostError.wrapping(error).message)")
        }
        guard content.rows == manifest.rows, content.sha256 == manifest.contentSHA256 else {
            throw HostError(.backupInvalid, "backup file \(copyPath) content does not match its manifest")
        }
        return manifest
    }
}
