import Foundation
import GuildNetCore
import GuildNetStateDirectory

/// The append-only audit log of migrations and rollbacks: `<state-dir>/audit/migrations.log`, one
/// JSON object per line, written by ``AuditLogFile`` (directory 0700, file 0600, `O_APPEND`, fsynced). Entries name files,
/// counts and checksums, never credential values.
public struct AuditLog: Sendable {
    public let path: String

    public init(stateDirectory: String) {
        path = StateDirectory(stateDirectory).migrationAuditLog
    }

    /// Appends one entry (one `write(2)` of one line, fsynced; see ``AuditLogFile``).
    public func append(_ entry: [String: JSONValue]) throws {
        do {
            try AuditLogFile(path: path).append(entry)
        } catch {
            throw HostError(.io, "cannot write audit log \(path): \(error.description)")
        }
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
