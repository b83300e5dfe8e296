import Crypto
import Foundation
import GuildNetCore
import GuildNetStateDirectory

extension ErrorCode {
    /// The legacy DB `<state-dir>/guildnet.sqlite` does not exist or cannot be read.
    public static let legacyDBMissing: ErrorCode = "legacy_db_missing"
    /// The operator's mapping CSV is malformed or names an invalid cluster.
    public static let mappingInvalid: ErrorCode = "mapping_invalid"
    /// A backup is incomplete, or its checksum does not match its manifest.
    public static let backupInvalid: ErrorCode = "backup_invalid"
    /// What was written does not match what was read (counts or checksums).
    public static let verificationFailed: ErrorCode = "verification_failed"
    /// The master key is malformed, or a credential does not decrypt under it.
    public static let decryptionFailed: ErrorCode = "decryption_failed"
    /// Invalid command-line options of `migrate-db` / `rollback-db`.
    public static let migrationUsage: ErrorCode = "migration_usage"
}

/// Small POSIX file helpers of the migration: hashing, durable copies and atomic replacement.
enum MigrationFiles {
    static let chunkSize = 1 << 20

    static func errnoText() -> String { String(cString: strerror(errno)) }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func size(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }

    /// Creates `path` and missing parents with `mode`.
    static func makeDirectory(_ path: String, mode: mode_t) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: Int(mode)])
        } catch {
            throw HostError(.io, "cannot create directory \(path): \(error.localizedDescription)")
        }
    }

    /// Lowercase hex SHA-256 of a file, read in chunks.
    static func sha256(ofFile path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HostError(.io, "cannot open \(path): \(errnoText())") }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw HostError(.io, "cannot read \(path): \(errnoText())")
            }
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        return hex(hasher.finalize())
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        var text = ""
        for byte in digest {
            text += String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
        }
        return text
    }

    /// Copies `source` to `destination` (created with `mode`, fsynced); returns the SHA-256 of
    /// the bytes copied.
    static func copy(_ source: String, to destination: String, mode: mode_t) throws -> String {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw HostError(.io, "cannot open \(source): \(errnoText())") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard output >= 0 else { throw HostError(.io, "cannot create \(destination): \(errnoText())") }
        defer { close(output) }
        fchmod(output, mode)
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw HostError(.io, "cannot read \(source): \(errnoText())")
            }
            if count == 0 { break }
            try buffer.withUnsafeBytes { raw in
                let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<count])
                hasher.update(bufferPointer: chunk)
                try writeAll(output, chunk, path: destination)
            }
        }
        guard fsync(output) == 0 else { throw HostError(.io, "cannot sync \(destination): \(errnoText())") }
        return hex(hasher.finalize())
    }

    static func writeAll(_ fd: CInt, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count, let base = bytes.baseAddress {
            let written = write(fd, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw HostError(.io, "cannot write \(path): \(errnoText())")
            }
            offset += written
        }
    }

    /// ``AtomicFile/write(_:to:mode:directoryMode:)`` with the migration's error codes: readers
    /// see the old file or the new one, never a torn one.
    static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
        do {
            try AtomicFile.write(bytes, to: path, mode: mode)
        } catch {
            throw HostError(.io, "cannot write \(error.description)")
        }
    }

    /// `rename(2)` then fsync of the destination's directory.
    static func renameDurably(_ source: String, to destination: String) throws {
        do {
            try AtomicFile.renameDurably(source, to: destination)
        } catch {
            throw HostError(.io, "cannot rename \(source) to \(destination): \(error.reason)")
        }
    }

    static func syncDirectory(_ path: String) {
        AtomicFile.syncDirectory(path.isEmpty ? "." : path)
    }

    static func readAll(_ path: String) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return [UInt8](data)
    }

    /// Removes a file if present (ENOENT is fine).
    static func removeIfPresent(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT {
            throw HostError(.io, "cannot remove \(path): \(errnoText())")
        }
    }

    /// `20250102T030405.678Z` in UTC.
    static func compactTimestamp(_ date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss.SSS'Z'"
        return formatter.string(from: date)
    }

    static func isoTimestamp(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// Test-only crash injection: `GUILDNET_MIGRATE_CRASH_AT=<point>` kills the process with SIGKILL
/// when the migration reaches that point (`after-backup`, `mid-cluster`, `before-rename`,
/// `after-rename`), to prove that a crash at any point leaves the source intact and converges on
/// the next run.
public enum CrashPoint: String, Sendable, CaseIterable {
    case afterBackup = "after-backup"
    case midCluster = "mid-cluster"
    case beforeRename = "before-rename"
    case afterRename = "after-rename"

    public static let environmentVariable = "GUILDNET_MIGRATE_CRASH_AT"

    func reached(_ environment: [String: String]) {
        guard environment[Self.environmentVariable] == rawValue else { return }
        kill(getpid(), SIGKILL)
    }
}
