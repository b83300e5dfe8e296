import GuildNetCore
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The client's failure classes and their ``HostError`` form. Every error the RethinkDB client throws
/// across the module boundary is ``hostError``; messages never contain a password.
///
/// | case | code | transient |
/// |---|---|---|
/// | ``unreachable(address:reason:)`` (refused, connect/handshake timeout, DNS) | `rethink_unreachable` | yes |
/// | ``authenticationFailed(user:reason:)`` (handshake `error_code` 10–20, server signature mismatch) | `rethink_auth_failed` | no |
/// | ``schemaMissing(message:)`` (database or table does not exist) | `rethink_schema_missing` | no |
/// | ``unavailable(message:errorType:)`` (RUNTIME errors of type `OP_FAILED`/`OP_INDETERMINATE`: the table or its primary replica is not available, e.g. while a server restarts) | `rethink_unavailable` | yes |
/// | ``query(message:responseType:errorType:)`` (other CLIENT/COMPILE/RUNTIME errors) | `rethink_query_error` | no |
/// | ``connectionLost(reason:)`` (socket closed with queries pending) | `rethink_connection_lost` | yes |
/// | ``protocolViolation(reason:)`` (bad frame or JSON, other handshake errors) | `rethink_protocol_error` | no |
/// | ``timeout(what:after:)`` (no reply within the query timeout) | `timeout` | yes |
/// | ``notConfigured(reason:)`` | `rethink_not_configured` | no |
/// | ``feedLimit(reason:)`` | `rethink_feed_limit` | yes |
/// | ``feedSkipped(message:)`` (the server's feed queue overflowed and dropped changes) | `rethink_feed_skipped` | yes |
/// | ``shutDown`` (the connector was shut down) | `rethink_connection_lost` | no |
public enum RethinkError: Error, Sendable, Equatable {
    case unreachable(address: String, reason: String)
    case authenticationFailed(user: String, reason: String)
    case schemaMissing(message: String)
    case query(message: String, responseType: RethinkWire.ResponseType, errorType: RethinkWire.ErrorType?)
    /// An availability error: the official drivers' `ReqlAvailabilityError` (`ReqlOpFailedError`,
    /// `ReqlOpIndeterminateError`). Retrying later may succeed.
    case unavailable(message: String, errorType: RethinkWire.ErrorType)
    case connectionLost(reason: String)
    case protocolViolation(reason: String)
    case timeout(what: String, after: Duration)
    case notConfigured(reason: String)
    case feedLimit(reason: String)
    /// The server's changefeed queue overflowed (`changefeed_queue_size`) and it skipped changes,
    /// reported in the feed as `{"error":"Changefeed cache over array size limit, skipped N elements."}`.
    case feedSkipped(message: String)
    /// The connector was shut down (its cluster is stopping).
    case shutDown

    /// The error as it crosses module boundaries.
    public var hostError: HostError {
        switch self {
        case .unreachable(let address, let reason):
            HostError(.rethinkUnreachable, "cannot reach RethinkDB at \(address): \(reason)")
        case .authenticationFailed(let user, let reason):
            HostError(.rethinkAuthFailed, "RethinkDB authentication failed for user \"\(user)\": \(reason)")
        case .schemaMissing(let message):
            HostError(.rethinkSchemaMissing, message)
        case .query(let message, _, _):
            HostError(.rethinkQueryError, message)
        case .unavailable(let message, _):
            HostError(.rethinkUnavailable, "RethinkDB is not available: \(message)")
        case .connectionLost(let reason):
            HostError(.rethinkConnectionLost, reason)
        case .protocolViolation(let reason):
            HostError(.rethinkProtocolError, "RethinkDB protocol error: \(reason)")
        case .timeout(let what, let after):
            HostError(.timeout, "\(what) did not finish within \(after)")
        case .notConfigured(let reason):
            HostError(.rethinkNotConfigured, reason)
        case .feedLimit(let reason):
            HostError(.rethinkFeedLimit, reason)
        case .feedSkipped(let message):
            HostError(.rethinkFeedSkipped, "RethinkDB dropped changes of this feed: \(message)")
        case .shutDown:
            HostError(.rethinkConnectionLost, "the RethinkDB connector is shut down", transient: false)
        }
    }

    /// Classifies an error response (`t` 16, 17 or 18) by its type, `e` and message (`r[0]`):
    /// a missing database or table (reported as `OP_FAILED` too) is ``schemaMissing(message:)``;
    /// RethinkDB's other `OP_FAILED` messages about the schema ("… already exists.", "… does not
    /// exist.", "Index … was not found on table …") are ``query(message:responseType:errorType:)``;
    /// every other `OP_FAILED` and every `OP_INDETERMINATE` runtime error is
    /// ``unavailable(message:errorType:)``.
    public static func classify(
        responseType: RethinkWire.ResponseType, errorType: RethinkWire.ErrorType?, message: String
    ) -> RethinkError {
        if responseType == .runtimeError, errorType == .opFailed || errorType == .nonExistence,
            isSchemaMissingMessage(message)
        {
            return .schemaMissing(message: message)
        }
        if responseType == .runtimeError, let errorType,
            errorType == .opIndeterminate || (errorType == .opFailed && !isSchemaMessage(message))
        {
            return .unavailable(message: message, errorType: errorType)
        }
        return .query(message: message, responseType: responseType, errorType: errorType)
    }

    /// RethinkDB's `OP_FAILED` messages that are about the schema, not availability: "… already
    /// exists.", "… does not exist." and "Index \`i\` was not found on table \`db.t\`.".
    static func isSchemaMessage(_ message: String) -> Bool {
        message.hasSuffix(" already exists.") || message.hasSuffix(" does not exist.")
            || (message.hasPrefix("Index `") && message.contains("` was not found on table `"))
    }

    /// RethinkDB's messages for a missing database or table:
    /// "Database \`x\` does not exist." and "Table \`x.y\` does not exist.".
    public static func isSchemaMissingMessage(_ message: String) -> Bool {
        for prefix in ["Database `", "Table `"] where message.hasPrefix(prefix) && message.hasSuffix("` does not exist.") {
            let name = message.dropFirst(prefix.count).dropLast("` does not exist.".count)
            return !name.isEmpty && !name.contains("`")
        }
        return false
    }

    /// Classifies a handshake failure `{"success":false,"error":…,"error_code":N}` (codes 10–20 are
    /// authentication errors, as the official drivers treat them).
    public static func classifyHandshake(errorCode: Int64?, message: String, user: String) -> RethinkError {
        if let errorCode, RethinkWire.HandshakeErrorCode.isAuthentication(errorCode) {
            return .authenticationFailed(user: user, reason: message)
        }
        let code = errorCode.map { " (error_code \($0))" } ?? ""
        return .protocolViolation(reason: "handshake rejected: \(message)\(code)")
    }

    /// Classifies a failure to open the TCP connection: refused, timed out or unresolvable are all
    /// ``unreachable(address:reason:)``.
    public static func classifyConnect(_ error: any Error, address: RethinkAddress) -> RethinkError {
        let reason: String
        switch error {
        case ChannelError.connectTimeout(let amount):
            reason = "connect timed out after \(amount.nanoseconds / 1_000_000) ms"
        case let error as NIOConnectionError:
            if error.dnsAError != nil || error.dnsAAAAError != nil, error.connectionErrors.isEmpty {
                reason = "cannot resolve host \(address.host)"
            } else if let first = error.connectionErrors.first {
                reason = describe(first.error)
            } else {
                reason = "no address to connect to"
            }
        case let error as SocketAddressError:
            reason = "cannot resolve host \(address.host) (\(error))"
        default:
            reason = describe(error)
        }
        return .unreachable(address: address.description, reason: reason)
    }

    private static func describe(_ error: any Error) -> String {
        if let ioError = error as? IOError {
            return ioError.errnoCode == ECONNREFUSED ? "connection refused" : "\(ioError)"
        }
        if case ChannelError.connectTimeout = error { return "connect timed out" }
        return String(describing: error)
    }
}
