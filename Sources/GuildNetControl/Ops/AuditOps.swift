import GuildNetCore
import GuildNetRuntime
import GuildNetStateDirectory

/// `audit.tail`: the last entries of the admin audit log (`<state-dir>/audit/admin.log`).
enum AuditOps {
    static let all: [ControlOp] = [
        ControlOp("audit.tail", fields: ["limit"]) { params, context in
            let limit = Int(try params.optionalInt("limit", in: 1...1000) ?? 50)
            let path = StateDirectory(context.host.configuration.stateDirectory).adminAuditLog
            let entries: [JSONValue]
            do throws(FileFailure) {
                entries = try AuditLogFile(path: path).tail(limit)
            } catch {
                throw HostError(.io, "cannot read the audit log: \(error.description)")
            }
            return ["path": .string(path), "entries": .array(entries)]
        }
    ]
}
