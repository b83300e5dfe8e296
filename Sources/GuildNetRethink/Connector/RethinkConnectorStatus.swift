import GuildNetCore

/// A snapshot of one connector, for `rethink.status` and `cluster.status` (never credentials).
public struct RethinkConnectorStatus: Sendable, Equatable {
    /// The address last configured or resolved (`host:port`), if any.
    public var address: String?
    public var user: String
    public var openConnections: Int
    /// Responses awaited on the open connections (queries in flight and feeds' long polls).
    public var pendingQueries: Int
    public var maxConnections: Int
    /// Connections opened since the connector started (replacements included).
    public var connectionsOpened: Int
    /// Queries started through the connector (runs, cursors, feed starts, warm-ups).
    public var queriesRun: Int
    /// Queries or connection attempts that failed.
    public var failures: Int
    public var lastError: HostError?
    public var feeds: ChangefeedStatistics
    public var shutDown: Bool

    /// The snapshot as JSON (`last_error` as `{"code","message","transient"}` or null).
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "address": address.map(JSONValue.string) ?? .null,
            "user": .string(user),
            "open_connections": .int(Int64(openConnections)),
            "pending_queries": .int(Int64(pendingQueries)),
            "max_connections": .int(Int64(maxConnections)),
            "connections_opened": .int(Int64(connectionsOpened)),
            "queries_run": .int(Int64(queriesRun)),
            "failures": .int(Int64(failures)),
            "feeds_active": .int(Int64(feeds.active)),
            "feed_limit": .int(Int64(feeds.limit)),
            "feed_events_delivered": .int(Int64(feeds.delivered)),
            "feed_events_dropped": .int(Int64(feeds.dropped)),
            "feed_gaps": .int(Int64(feeds.gaps)),
            "feed_events_per_second_limit": .int(Int64(feeds.eventsPerSecondLimit)),
            "feed_throttled_turns": .int(Int64(feeds.throttledTurns)),
            "feeds_resubscribing": .int(Int64(feeds.resubscribing)),
            "feeds_waiting_for_table": .int(Int64(feeds.waitingForTable)),
            "feed_unavailable_retries": .int(Int64(feeds.unavailableRetries)),
            "shut_down": .bool(shutDown),
        ]
        if let lastError {
            object["last_error"] = lastError.json
        } else {
            object["last_error"] = .null
        }
        return .object(object)
    }
}
