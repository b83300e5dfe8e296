import GuildNetCore

/// The settings of one cluster's RethinkDB connector. Its description and mirror never show the password.
public struct RethinkConnectorConfiguration: Sendable, CustomStringConvertible, CustomReflectable {
    /// The server; `nil` when an address resolver supplies it (discovery).
    public var address: RethinkAddress?
    public var user: String
    public var password: String
    /// Most connections open at once (queries share them by multiplexing).
    public var maxConnections: Int
    /// TCP connect timeout (the handshake gets as long again).
    public var connectTimeout: Duration
    /// How long each query response may take (feed CONTINUEs excepted).
    public var queryTimeout: Duration
    /// Most changefeeds open at once; more fail with `rethink_feed_limit`.
    public var maxFeeds: Int
    /// Events buffered per subscriber before the overflow policy applies.
    public var feedBufferLimit: Int
    public var feedOverflow: ChangefeedOverflowPolicy
    /// Events per second all this connector's feeds may deliver together; 0 means unlimited.
    /// A flooded feed beyond it is paced (the server queues the rest); see ``RethinkChangefeed``.
    public var feedEventsPerSecond: Int
    /// Events that may pass at once above ``feedEventsPerSecond`` after a quiet spell.
    public var feedBurst: Int
    /// The most rows per feed response (`max_batch_rows`): small batches keep a flooded feed's
    /// decoding in short turns, so other clusters' events do not wait behind it.
    public var feedBatchRows: Int
    /// Delays between a feed's reconnection attempts.
    public var reconnectBackoff: Backoff
    /// The largest response frame accepted.
    public var maxResponseBytes: Int
    /// Most rows ``RethinkConnector/run(_:db:)`` collects from one sequence.
    public var maxResultRows: Int

    public init(
        address: RethinkAddress? = nil, user: String = "admin", password: String = "", maxConnections: Int = 4,
        connectTimeout: Duration = .seconds(5), queryTimeout: Duration = .seconds(30), maxFeeds: Int = 32,
        feedBufferLimit: Int = 1024, feedOverflow: ChangefeedOverflowPolicy = .dropOldest,
        feedEventsPerSecond: Int = 0, feedBurst: Int = 1_000, feedBatchRows: Int = 32,
        reconnectBackoff: Backoff = Backoff(initial: .milliseconds(50), cap: .seconds(5), jitter: 0.5),
        maxResponseBytes: Int = 64 << 20, maxResultRows: Int = 100_000
    ) {
        self.address = address
        self.user = user
        self.password = password
        self.maxConnections = max(1, maxConnections)
        self.connectTimeout = connectTimeout
        self.queryTimeout = queryTimeout
        self.maxFeeds = max(0, maxFeeds)
        self.feedBufferLimit = max(1, feedBufferLimit)
        self.feedOverflow = feedOverflow
        self.feedEventsPerSecond = max(0, feedEventsPerSecond)
        self.feedBurst = max(1, feedBurst)
        self.feedBatchRows = max(1, feedBatchRows)
        self.reconnectBackoff = reconnectBackoff
        self.maxResponseBytes = maxResponseBytes
        self.maxResultRows = maxResultRows
    }

    var connectionOptions: RethinkConnection.Options {
        RethinkConnection.Options(connectTimeout: connectTimeout, maxResponseBytes: maxResponseBytes)
    }

    public var description: String {
        "RethinkConnectorConfiguration(address: \(address?.description ?? "discovered"), user: \(user), "
            + "password: <redacted>, maxConnections: \(maxConnections), connectTimeout: \(connectTimeout), "
            + "queryTimeout: \(queryTimeout), maxFeeds: \(maxFeeds), feedBufferLimit: \(feedBufferLimit), "
            + "feedEventsPerSecond: \(feedEventsPerSecond), feedBurst: \(feedBurst), feedBatchRows: \(feedBatchRows))"
    }

    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "address": address?.description ?? "discovered", "user": user, "password": "<redacted>",
                "maxConnections": maxConnections, "connectTimeout": connectTimeout, "queryTimeout": queryTimeout,
                "maxFeeds": maxFeeds, "feedBufferLimit": feedBufferLimit, "feedEventsPerSecond": feedEventsPerSecond,
                "feedBurst": feedBurst, "feedBatchRows": feedBatchRows,
            ])
    }
}
