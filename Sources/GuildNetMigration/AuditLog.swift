import Foundation
import GuildNetCore
import GuildNetStateDirectory

/// The append-only audit log of migrations and rollbacks: `<state-dir>/audit/migrations.log`, one
/// JSON object per line (directory 0700, file 0600, opened with `O_APPEND`). Entries name files,
/// counts and checksums, never credential values.
public struct AuditLog: Sendable {
    public let path: String

    public init(stateDirectory: String) {
        path = StateDirectory(stateDirectory).migrationAuditLog
    }

    /// Appends one entry (one `write(2)` of one line).
    public func append(_ entry: [String: JSONValue]) throws {
        try MigrationFiles.makeDirectory((path as NSString).deletingLastPathComponent, mode: 0o700)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HostError(.io, "cannot open audit log \(path): \(MigrationFiles.errnoText())") }
        defer { close(fd) }
        fchmod(fd, 0o600)
        var line = JSONValue.object(entry).serialized
        line.append(0x0A)
        try line.withUnsafeBytes { try MigrationFiles.writeAll(fd, $0, path: path) }
        fsync(fd)
    }

    /// The common header of an entry: timestamp, operator, host, command line.
    static func header(event: String, operatorName: String?, commandLine: [String], environment: [String: String]) -> [String: JSONValue] {
        [
            "timestamp": .string(MigrationFiles.isoTimestamp()),
            "event": .string(event),
            "operator": .string(operatorName ?? environment["USER"] ?? environment["LOGNAME"] ?? "unknown"),
            "host": .string(ProcessInfo.processInfo.hostName),
            "pid": .int(Int64(getpid())),
            "command_line": .array(commandLine.map { .string($0) }),
        ]
    }

    /// A file entry: path, role (`backed_up`, `written`, `restored`, ...), SHA-256.
    static func file(_ path: String, role: String, sha256: String) -> JSONValue {
        .object(["path": .string(path), "role": .string(role), "sha256": .string(sha256)])
    }
}
