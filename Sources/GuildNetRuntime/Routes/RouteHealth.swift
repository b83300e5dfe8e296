import Foundation
import GuildNetCore

/// The last health probe (`GET /version`) of one route.
public struct RouteHealth: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Never probed (auto stopped at an earlier healthy route).
        case unknown
        case healthy
        case failed
    }

    public var state: State = .unknown
    /// Duration of the last probe (connection, TLS and the request).
    public var latency: Duration?
    /// Why the last probe failed (never credentials).
    public var lastError: String?
    public var checkedAt: Date?

    var json: JSONValue {
        var object: [String: JSONValue] = ["state": .string(state.rawValue)]
        object["latency_ms"] = latency.map { .double(($0.seconds * 1000 * 1000).rounded() / 1000) } ?? .null
        object["last_error"] = lastError.map(JSONValue.string) ?? .null
        object["checked_at"] = checkedAt.map { .double($0.timeIntervalSince1970) } ?? .null
        return .object(object)
    }
}

/// A choice of route: which, why and when (the last switch is kept for `route.status`).
public struct RouteDecision: Sendable, Equatable {
    /// The route in use; `nil` when none is healthy.
    public var route: RouteKind?
    public var reason: String
    public var at: Date
}
