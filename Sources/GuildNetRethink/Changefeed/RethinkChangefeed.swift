import GuildNetCore
import Logging

/// The changefeeds of one connector (one cluster): subscriptions, their cap, and the task group
/// their workers run in.
///
/// ## Ownership
/// ``run()`` is the long-running task the cluster's supervisor runs (through
/// ``RethinkConnector/run()``); every feed is a child task of its task group, never detached.
/// ``subscribe(_:primaryKey:bufferLimit:overflow:source:)`` starts the feed's first query in the
/// caller's task (so errors such as a missing table are thrown to the caller) and hands the open
/// cursor to that group. A feed subscribed while ``run()`` is not running waits for it.
/// Cancelling ``run()`` or calling ``shutdown()`` ends every feed with `.ended(nil)`, sending STOP.
///
/// ## Resume semantics after a connection loss
/// Each feed runs with `include_initial` and `include_states` (added to the subscriber's term) and
/// mirrors the rows it has seen, keyed by `primaryKey`. When its connection drops:
/// 1. the subscriber receives `.gap(reason:)` (`rethink_connection_lost`, `rethink_unreachable`, or
///    `rethink_unavailable` when the server aborted the feed because its table became unavailable);
/// 2. the feed re-subscribes with capped, jittered backoff until it succeeds, the feed is stopped, or
///    a non-transient error occurs (then `.ended(error)`, e.g. `rethink_schema_missing`). A table
///    that is not available yet (`rethink_unavailable`: a restarted server accepts connections
///    before its tables are ready, and so does a failover) is transient: the feed keeps trying and
///    never ends for it; ``ChangefeedStatistics/waitingForTable`` counts such feeds;
/// 3. it reconciles: every row whose current value differs from the last one the subscriber saw
///    arrives as `.change(old: last seen or nil, new: current)`; every row that vanished during the
///    gap as `.change(old: last seen, new: nil)`; unchanged rows are not repeated;
/// 4. `.resumed`, and live changes follow (changes made during re-subscription may precede it).
///
/// So after `.resumed` the subscriber's state equals the server's: no change is lost, although
/// several changes to one row during the gap arrive as one. The mirror costs memory proportional to
/// the rows the feed covers. With `include_initial` the first subscription also delivers the
/// current rows as `.change(old: nil, new: row)`; `include_states` forwards `initializing`/`ready`
/// of the first subscription only.
///
/// ## Limits
/// The feeds share one event budget (``eventBudget``, a token bucket): a feed that has used it up
/// stops asking the server for more (no CONTINUE) until tokens are due, so a flood in one cluster
/// costs this process no more than the budget, and the flood waits on the RethinkDB server. If the
/// server's own queue (`changefeed_queue_size`, 100,000 by default) overflows meanwhile, it skips
/// changes and says so; the feed then resumes as after a connection loss (`.gap` with
/// `rethink_feed_skipped`, reconciliation, `.resumed`), so no change is silently lost. Skips that
/// follow each other within 30 seconds wait the reconnect backoff before re-subscribing.
///
/// At most `limit` feeds at once (more: `rethink_feed_limit`). Each subscriber has a buffer of
/// `bufferLimit` events; when it is full the ``ChangefeedOverflowPolicy`` applies (default: drop the
/// oldest event and count it in ``ChangefeedStatistics/dropped``).
public actor RethinkChangefeed {
    /// Most feeds open at once.
    public nonisolated let limit: Int
    /// Events per second all feeds together may deliver (see "Limits").
    public nonisolated let eventBudget: TokenBucket
    private let backoff: Backoff
    private let logger: Logger
    nonisolated let counters = ChangefeedCounters()

    private var workers: [ChangefeedID: ChangefeedWorker] = [:]
    private var waiting: [ChangefeedWorker] = []
    private var spawn: AsyncStream<ChangefeedWorker>.Continuation?
    private var runGeneration = 0
    private var reserved = 0
    private var nextID: UInt64 = 1
    private var isShutDown = false
    private var drainWaiters: [CheckedContinuation<Void, Never>] = []

    /// - Parameter eventBudget: shared by all feeds; the default does not limit.
    public init(
        limit: Int = 32, backoff: Backoff, eventBudget: TokenBucket = TokenBucket(rate: 0, burst: 1),
        logger: Logger = Logger(label: "guildnet.rethink")
    ) {
        self.limit = limit
        self.eventBudget = eventBudget
        self.backoff = backoff
        self.logger = logger
    }

    /// Subscribes to `term`, which must end with `changes(…)`.
    /// - Parameters:
    ///   - primaryKey: the field that identifies a row (for reconciliation after a gap).
    ///   - bufferLimit: events buffered for this subscriber (at least 1).
    /// - Throws: `rethink_feed_limit` at the cap; `invalid_field` for a term that is not a changefeed;
    ///   the query's own error (`rethink_schema_missing`, `rethink_unreachable`, …).
    func subscribe(
        _ term: ReQL, primaryKey: String, bufferLimit: Int, overflow: ChangefeedOverflowPolicy, source: any ChangefeedSource
    ) async throws -> ChangefeedSubscription {
        try checkOpen()
        guard term.isChangefeed else {
            throw HostError(.invalidField, "rethink changefeed: the query must end with changes()")
        }
        guard workers.count + reserved < limit else {
            throw RethinkError.feedLimit(reason: "at most \(limit) changefeeds may be open per cluster").hostError
        }
        reserved += 1
        defer { reserved -= 1 }
        let internalTerm = term.settingOptarg("include_initial", true).settingOptarg("include_states", true)
        let cursor = try await source.openFeedCursor(internalTerm)
        guard !isShutDown, cursor.isFeed else {
            cursor.close()
            try checkOpen()
            throw RethinkError.query(message: "the query did not open a changefeed", responseType: .clientError, errorType: nil)
                .hostError
        }
        let id = ChangefeedID(nextID)
        nextID += 1
        let (sink, events) = ChangefeedSink.make(id: id, bufferLimit: bufferLimit, policy: overflow, counters: counters)
        let worker = ChangefeedWorker(
            id: id, sink: sink, term: internalTerm, primaryKey: primaryKey,
            forwardInitial: term.optargDatum("include_initial") == .bool(true),
            forwardStates: term.optargDatum("include_states") == .bool(true), firstCursor: cursor, source: source,
            backoff: backoff, eventBudget: eventBudget, counters: counters, logger: logger)
        sink.onTermination { [weak worker] in worker?.requestStop() }
        workers[id] = worker
        counters.update { $0.started += 1 }
        if let spawn {
            spawn.yield(worker)
        } else {
            waiting.append(worker)
        }
        logger.debug("rethink changefeed subscribed", metadata: ["feed": "\(id)"])
        return ChangefeedSubscription(id: id, events: events)
    }

    /// Ends subscription `id` with `.ended(nil)`; `false` if there is no such subscription.
    @discardableResult
    public func unsubscribe(_ id: ChangefeedID) -> Bool {
        guard let worker = workers[id] else { return false }
        if worker.abandon() {
            remove(id)
        } else {
            worker.requestStop()
        }
        return true
    }

    /// Runs the feeds as child tasks until cancelled or ``shutdown()``. Never throws today; `throws`
    /// leaves room for the supervisor contract.
    public func run() async throws {
        guard !isShutDown else { return }
        spawn?.finish()
        runGeneration += 1
        let generation = runGeneration
        let (stream, continuation) = AsyncStream<ChangefeedWorker>.makeStream()
        spawn = continuation
        for worker in waiting { continuation.yield(worker) }
        waiting.removeAll()
        await withDiscardingTaskGroup { group in
            for await worker in stream {
                group.addTask {
                    await worker.run()
                    await self.workerEnded(worker.id)
                }
            }
        }
        if runGeneration == generation { spawn = nil }
        // Workers yielded but never started (the loop ended first) end now.
        for (id, worker) in workers where worker.abandon() {
            remove(id)
        }
    }

    /// Ends every feed (`.ended(nil)`, STOP sent) and waits until their workers finished; later
    /// subscriptions fail. Idempotent.
    public func shutdown() async {
        isShutDown = true
        spawn?.finish()
        spawn = nil
        waiting.removeAll()
        for (id, worker) in workers {
            if worker.abandon() {
                remove(id)
            } else {
                worker.requestStop()
            }
        }
        while !workers.isEmpty {
            await withCheckedContinuation { drainWaiters.append($0) }
        }
    }

    /// Totals, with the number of open feeds.
    public func statistics() -> ChangefeedStatistics {
        var snapshot = counters.snapshot
        snapshot.active = workers.count
        snapshot.limit = limit
        snapshot.eventsPerSecondLimit = eventBudget.isLimiting ? Int(eventBudget.rate) : 0
        return snapshot
    }

    /// Per-subscription counters, by id.
    public func subscriptions() -> [ChangefeedInfo] {
        workers.values.map(\.sink.info).sorted { $0.id.rawValue < $1.id.rawValue }
    }

    /// The number of open feeds.
    public var activeCount: Int { workers.count }

    private func workerEnded(_ id: ChangefeedID) {
        remove(id)
    }

    private func remove(_ id: ChangefeedID) {
        guard workers.removeValue(forKey: id) != nil else { return }
        logger.debug("rethink changefeed ended", metadata: ["feed": "\(id)"])
        if workers.isEmpty {
            let waiters = drainWaiters
            drainWaiters.removeAll()
            for waiter in waiters { waiter.resume() }
        }
    }

    private func checkOpen() throws {
        if isShutDown {
            throw RethinkError.shutDown.hostError
        }
    }
}
