import GuildNetCore

/// What a changefeed subscriber receives, in order.
///
/// A feed's life: `.change`/`.state` events; on connection loss `.gap(reason:)`, then, once
/// re-subscribed, reconciliation and live `.change` events and `.resumed` (see ``RethinkChangefeed``
/// for the exact semantics); finally exactly one `.ended`, after which the stream finishes.
public enum ChangefeedEvent: Sendable, Equatable {
    /// A row changed: `old` nil for an insert (or an initial row), `new` nil for a delete.
    case change(old: JSONValue?, new: JSONValue?)
    /// `initializing` / `ready` when the subscription asked for `include_states` (first subscription only).
    case state(String)
    /// The connection was lost, the server skipped changes, or the table became unavailable; the feed
    /// is re-subscribing and will resume.
    case gap(reason: HostError)
    /// After a gap: the feed is re-subscribed and reconciled; what follows is live.
    case resumed
    /// The last event: `nil` after unsubscribe, shutdown or cancellation; the error otherwise.
    case ended(HostError?)
}

/// Identifies one subscription within its connector.
public struct ChangefeedID: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(_ rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public var description: String { "feed-\(rawValue)" }
}

/// A subscription: its id (for unsubscribe) and its events.
public struct ChangefeedSubscription: Sendable {
    public let id: ChangefeedID
    public let events: AsyncStream<ChangefeedEvent>
}

/// What happens when a subscriber's buffer is full and another event arrives.
public enum ChangefeedOverflowPolicy: String, Sendable, CaseIterable {
    /// Drop the oldest buffered event and count it; the feed goes on.
    case dropOldest = "drop_oldest"
    /// End the subscription with `.ended(rethink_feed_limit "… overflowed")`; the subscriber must
    /// re-subscribe (with `include_initial` to rebuild its state).
    case end
}

/// Totals of one connector's changefeeds.
public struct ChangefeedStatistics: Sendable, Equatable {
    /// Subscriptions open now.
    public var active: Int
    /// The cap on ``active``.
    public var limit: Int
    /// Subscriptions opened since start.
    public var started: Int
    /// Events handed to subscriber buffers.
    public var delivered: Int
    /// Events dropped by a full buffer.
    public var dropped: Int
    /// Connection losses seen by feeds.
    public var gaps: Int
    /// Successful re-subscriptions after a gap.
    public var resumes: Int
    /// Turns in which a feed waited for the cluster's event budget (the budget was the limit).
    public var throttledTurns: Int
    /// The event budget: events per second all feeds may deliver together (0: unlimited).
    public var eventsPerSecondLimit: Int
    /// Feeds in a gap now: re-subscribing (between `.gap` and `.resumed`).
    public var resubscribing: Int
    /// Of ``resubscribing``, the feeds whose last attempt was refused with `rethink_unavailable`
    /// (their table is not ready yet, e.g. after a server restart).
    public var waitingForTable: Int
    /// Re-subscription attempts refused with `rethink_unavailable` since start.
    public var unavailableRetries: Int

    public init(
        active: Int = 0, limit: Int = 0, started: Int = 0, delivered: Int = 0, dropped: Int = 0, gaps: Int = 0, resumes: Int = 0,
        throttledTurns: Int = 0, eventsPerSecondLimit: Int = 0, resubscribing: Int = 0, waitingForTable: Int = 0,
        unavailableRetries: Int = 0
    ) {
        self.resubscribing = resubscribing
        self.waitingForTable = waitingForTable
        self.unavailableRetries = unavailableRetries
        self.active = active
        self.limit = limit
        self.started = started
        self.delivered = delivered
        self.dropped = dropped
        self.gaps = gaps
        self.resumes = resumes
        self.throttledTurns = throttledTurns
        self.eventsPerSecondLimit = eventsPerSecondLimit
    }
}

/// One subscription's counters.
public struct ChangefeedInfo: Sendable, Equatable {
    public var id: ChangefeedID
    public var delivered: Int
    public var dropped: Int
    public var gaps: Int
}
