import GRDB
import GuildNetCore

extension HostError {
    /// Maps an SQLite/GRDB error onto the stable store codes.
    static func store(_ error: any Error, _ context: String) -> HostError {
        if let hostError = error as? HostError { return hostError }
        guard let dbError = error as? DatabaseError else {
            return HostError(.dbError, "\(context): \(error)")
        }
        let message = "\(context): \(dbError.message ?? "\(dbError.resultCode)") (SQLite \(dbError.resultCode.rawValue))"
        switch dbError.resultCode.primaryResultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return HostError(.dbLocked, message)
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return HostError(.dbCorrupt, message)
        case .SQLITE_CANTOPEN, .SQLITE_IOERR, .SQLITE_FULL, .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_NOMEM:
            return HostError(.dbUnavailable, message)
        default:
            return HostError(.dbError, message)
        }
    }
}
