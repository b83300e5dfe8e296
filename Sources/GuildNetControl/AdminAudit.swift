import Foundation
import GuildNetCore
import GuildNetStateDirectory

/// The admin operations on cluster data that leave a line in `<state-dir>/audit/admin.log`
/// (``AuditLogFile``): who (``ControlPeer``), which op, which cluster, which keys (names only,
/// never values), and the result. Migration and rollback have their own log (`migrations.log`).
enum AdminAudit {
    /// The ops audited, and what of their request each entry keeps.
    static let auditedOps: Set<String> = [
        "cluster.register", "cluster.unregister", "settings.set", "db.delete", "cluster.bootstrap", "cluster.export-config",
        "route.set", "proxy.rotate_token",
    ]

    /// The entry's request part for `op`, or `nil` when this request is not audited (an op not in
    /// ``auditedOps``, or a bootstrap dry run, which changes nothing).
    static func details(op: String, fields: [String: JSONValue]) -> [String: JSONValue]? {
        guard auditedOps.contains(op) else { return nil }
        var entry: [String: JSONValue] = ["op": .string(op)]
        if case .string(let cluster)? = fields["cluster"] { entry["cluster"] = .string(cluster) }
        var keys: [String] = []
        switch op {
        case "cluster.register":
            if case .object(let settings)? = fields["settings"] { keys = settings.keys.sorted() }
            if case .string(let path)? = fields["kubeconfig"] { entry["kubeconfig"] = .string(path) }
            if case .string(let context)? = fields["context"] { entry["context"] = .string(context) }
        case "cluster.unregister":
            entry["purge"] = .bool(fields["purge"] == .bool(true))
        case "settings.set":
            if case .object(let settings)? = fields["settings"] { keys = settings.keys.sorted() }
            if case .string(let key)? = fields["key"] { keys.append(key) }
        case "db.delete":
            if case .string(let key)? = fields["key"] { keys = [key] }
        case "cluster.bootstrap":
            if fields["dry_run"] == .bool(true) { return nil }
            if case .string(let path)? = fields["path"] { entry["bundle"] = .string(path) }
        case "cluster.export-config":
            if case .string(let path)? = fields["path"] { entry["path"] = .string(path) }
        case "route.set":
            keys = ["route.strategy"]
            if case .string(let strategy)? = fields["strategy"] { entry["strategy"] = .string(strategy) }
        default:
            break
        }
        entry["keys"] = .array(keys.map(JSONValue.string))
        return entry
    }

    /// Appends the entry of one finished request: `details` plus time, operator and result
    /// (`ok`, or `error` with the error's code). The write and its fsync run on a Dispatch thread,
    /// never on a Swift concurrency thread; the call returns once the entry is durable.
    static func record(
        _ details: [String: JSONValue], peer: ControlPeer, outcome: Result<Void, HostError>, stateDirectory: String
    ) async throws(FileFailure) {
        let result: Result<Void, FileFailure> = await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                do throws(FileFailure) {
                    try appendBlocking(details, peer: peer, outcome: outcome, stateDirectory: stateDirectory)
                    continuation.resume(returning: .success(()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        try result.get()
    }

    private static func appendBlocking(
        _ details: [String: JSONValue], peer: ControlPeer, outcome: Result<Void, HostError>, stateDirectory: String
    ) throws(FileFailure) {
        var entry = details
        entry["time"] = .string(Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)))
        entry["operator"] = peer.json
        switch outcome {
        case .success:
            entry["result"] = "ok"
        case .failure(let error):
            entry["result"] = "error"
            entry["code"] = .string(error.code.rawValue)
        }
        try AuditLogFile(path: StateDirectory(stateDirectory).adminAuditLog).append(entry)
    }
}
