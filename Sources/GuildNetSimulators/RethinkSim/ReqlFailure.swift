import GuildNetRethink

/// An error answered to a query: the response type (`CLIENT_ERROR`, `COMPILE_ERROR`, `RUNTIME_ERROR`),
/// RethinkDB's `ErrorType` for runtime errors, and RethinkDB's message text.
struct ReqlFailure: Error, Sendable, Equatable {
    var responseType: RethinkWire.ResponseType
    var errorType: RethinkWire.ErrorType
    var message: String

    static func client(_ message: String, _ errorType: RethinkWire.ErrorType = .queryLogic) -> ReqlFailure {
        ReqlFailure(responseType: .clientError, errorType: errorType, message: message)
    }

    static func compile(_ message: String) -> ReqlFailure {
        ReqlFailure(responseType: .compileError, errorType: .queryLogic, message: message)
    }

    static func runtime(_ errorType: RethinkWire.ErrorType, _ message: String) -> ReqlFailure {
        ReqlFailure(responseType: .runtimeError, errorType: errorType, message: message)
    }

    static func logic(_ message: String) -> ReqlFailure { runtime(.queryLogic, message) }
    static func opFailed(_ message: String) -> ReqlFailure { runtime(.opFailed, message) }
    static func nonExistence(_ message: String) -> ReqlFailure { runtime(.nonExistence, message) }

    static func databaseMissing(_ name: String) -> ReqlFailure { opFailed("Database `\(name)` does not exist.") }
    static func tableMissing(_ database: String, _ name: String) -> ReqlFailure {
        opFailed("Table `\(database).\(name)` does not exist.")
    }
    static func indexMissing(_ index: String, _ table: ReqlTableRef) -> ReqlFailure {
        opFailed("Index `\(index)` was not found on table `\(table.db).\(table.name)`.")
    }
    static func expected(_ wanted: String, found: String) -> ReqlFailure {
        logic("Expected type \(wanted) but found \(found).")
    }
}
