import GuildNetCore
import Logging

/// Opens changefeed cursors for workers (the connector, through its pool).
protocol ChangefeedSource: Sendable {
    func openFeedCursor(_ term: ReQL) async throws -> RethinkCursor
}

/// The work of one subscription, run as a child task of ``RethinkChangefeed/run()``: reads the feed's
/// cursor into the subscriber's sink, and on connection loss (or when the server reports it skipped
/// changes) emits `.gap`, re-subscribes with capped jittered backoff and reconciles
/// (``ChangefeedReconciler``). Every ``itemsPerTurn`` changes it takes as many tokens from its
/// cluster's event budget (``eventBudget``), which paces a flooded feed: while it waits, it sends no
/// CONTINUE, so the flood queues on the RethinkDB server, not in this process.
final class ChangefeedWorker: Sendable {
    let id: ChangefeedID
    let sink: ChangefeedSink
    private let term: ReQL
    private let primaryKey: String
    private let forwardInitial: Bool
    private let forwardStates: Bool
    private let source: any ChangefeedSource
    private let backoff: Backoff
    /// The cluster's changefeed event budget, shared by all its feeds.
    let eventBudget: TokenBucket
    private let counters: ChangefeedCounters
    private let logger: Logger
    private let stopSignal: AsyncStream<Never>
    private let stopContinuation: AsyncStream<Never>.Continuation

    private enum Phase: Sendable {
        case idle(RethinkCursor)
        case running
        case done
    }

    private let phase: LockedValue<Phase>
    private let stopRequested = LockedValue(false)

    init(
        id: ChangefeedID, sink: ChangefeedSink, term: ReQL, primaryKey: String, forwardInitial: Bool, forwardStates: Bool,
        firstCursor: RethinkCursor, source: any ChangefeedSource, backoff: Backoff, eventBudget: TokenBucket,
        counters: ChangefeedCounters, logger: Logger
    ) {
        self.id = id
        self.sink = sink
        self.term = term
        self.primaryKey = primaryKey
        self.forwardInitial = forwardInitial
        self.forwardStates = forwardStates
        self.source = source
        self.backoff = backoff
        self.eventBudget = eventBudget
        self.counters = counters
        self.logger = logger
        phase = LockedValue(.idle(firstCursor))
        (stopSignal, stopContinuation) = AsyncStream<Never>.makeStream()
    }

    /// Asks the running feed to stop (it ends with `.ended(nil)`); idempotent.
    func requestStop() {
        stopRequested.withLock { $0 = true }
        stopContinuation.finish()
    }

    /// Ends a feed that never started running: closes its cursor and finishes its sink.
    /// - Returns: `false` when the feed is running (use ``requestStop()``) or already done.
    func abandon() -> Bool {
        let cursor: RethinkCursor? = phase.withLock { phase in
            guard case .idle(let cursor) = phase else { return nil }
            phase = .done
            return cursor
        }
        guard let cursor else { return false }
        cursor.close()
        sink.finish(nil)
        return true
    }

    /// Runs the feed until it ends, it is stopped, or the task is cancelled.
    func run() async {
        let cursor: RethinkCursor? = phase.withLock { phase in
            guard case .idle(let cursor) = phase else { return nil }
            phase = .running
            return cursor
        }
        guard let cursor else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.loop(first: cursor) }
            group.addTask { for await _ in self.stopSignal {} }
            await group.next()
            group.cancelAll()
        }
        sink.finish(nil)
        phase.withLock { $0 = .done }
    }

    private var shouldStop: Bool {
        Task.isCancelled || stopRequested.withLock { $0 } || sink.isEnded
    }

    /// Changes handled per turn: after each such run the worker takes their tokens from the event
    /// budget, and yields its thread if it did not have to wait (fairness between feeds and clusters).
    static let itemsPerTurn = 32

    /// The longest wait between attempts while the table is unavailable: a restarted server's
    /// tables become ready within seconds, and the feed should follow within one short step, not
    /// one step of the connection backoff (up to its cap).
    static let unavailableRetryCap: Duration = .seconds(1)

    /// Skip-resumes closer together than this count as one streak: each further one waits longer
    /// (the connector's backoff) before re-subscribing, so a feed under a lasting flood re-reads its
    /// rows at most once per backoff cap instead of in a tight loop.
    static let skipStreakWindow: Duration = .seconds(30)

    private func loop(first: RethinkCursor) async {
        var reconciler = ChangefeedReconciler(primaryKey: primaryKey, forwardInitial: forwardInitial, forwardStates: forwardStates)
        var cursor = first
        var sinceTurn = 0
        var skips = SkipStreak(window: Self.skipStreakWindow)
        let clock = ContinuousClock()
        while true {
            do {
                for try await item in cursor {
                    if let notice = Self.skipNotice(item) {
                        throw RethinkError.feedSkipped(message: notice).hostError
                    }
                    for event in reconciler.process(item) {
                        guard sink.emit(event) else {
                            cursor.close()
                            return
                        }
                    }
                    // A whole batch is already buffered: pay for its changes and give other clusters'
                    // tasks a turn every few dozen, so one flooded feed can neither hold an executor
                    // thread for long nor take more than its cluster's budget.
                    sinceTurn += 1
                    if sinceTurn == Self.itemsPerTurn {
                        sinceTurn = 0
                        if try await eventBudget.acquire(Self.itemsPerTurn) {
                            counters.update { $0.throttledTurns += 1 }
                        } else {
                            await Task.yield()
                        }
                    }
                }
                // The server ended the feed without an error (it answered a STOP).
                sink.finish(nil)
                return
            } catch {
                cursor.close()
                if shouldStop || error is CancellationError {
                    sink.finish(nil)
                    return
                }
                let failure = HostError.wrapping(error)
                guard Self.resumesAfter(failure) else {
                    logger.warning("rethink changefeed ended", metadata: ["feed": "\(id)", "code": "\(failure.code)"])
                    sink.finish(failure)
                    return
                }
                counters.update { $0.gaps += 1 }
                logger.warning("rethink changefeed interrupted; resuming", metadata: ["feed": "\(id)", "code": "\(failure.code)"])
                sink.emit(.gap(reason: failure))
                var firstDelay: Duration?
                if failure.code == .rethinkFeedSkipped {
                    let earlier = skips.record(at: clock.now)
                    if earlier > 0 { firstDelay = backoff.delay(attempt: earlier - 1) }
                }
                guard let next = await resubscribe(after: firstDelay) else { return }
                cursor = next
                reconciler.beginResume()
            }
        }
    }

    /// Opens the feed again, waiting with backoff between attempts (and `firstDelay` before the
    /// first); `nil` once the sink was finished.
    private func resubscribe(after firstDelay: Duration? = nil) async -> RethinkCursor? {
        var waitingForTable = false
        counters.update { $0.resubscribing += 1 }
        defer {
            counters.update {
                $0.resubscribing -= 1
                if waitingForTable { $0.waitingForTable -= 1 }
            }
        }
        var attempt = 0
        while true {
            var delay = attempt > 0 ? backoff.delay(attempt: attempt - 1) : firstDelay
            if waitingForTable, let wait = delay, wait > Self.unavailableRetryCap { delay = Self.unavailableRetryCap }
            if let delay {
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    sink.finish(nil)
                    return nil
                }
            }
            if shouldStop {
                sink.finish(nil)
                return nil
            }
            attempt += 1
            do {
                let cursor = try await source.openFeedCursor(term)
                if shouldStop {
                    cursor.close()
                    sink.finish(nil)
                    return nil
                }
                counters.update { $0.resumes += 1 }
                logger.info("rethink changefeed resubscribed", metadata: ["feed": "\(id)", "attempts": "\(attempt)"])
                return cursor
            } catch {
                if shouldStop || error is CancellationError {
                    sink.finish(nil)
                    return nil
                }
                let failure = HostError.wrapping(error)
                guard failure.transient else {
                    logger.warning("rethink changefeed cannot resume", metadata: ["feed": "\(id)", "code": "\(failure.code)"])
                    sink.finish(failure)
                    return nil
                }
                // A table that is not ready yet (the server restarted, a replica fails over): keep
                // trying with the capped backoff; the feed never ends for it.
                let unavailable = failure.code == .rethinkUnavailable
                if unavailable != waitingForTable {
                    waitingForTable = unavailable
                    counters.update { $0.waitingForTable += unavailable ? 1 : -1 }
                }
                if unavailable { counters.update { $0.unavailableRetries += 1 } }
                logger.debug("rethink changefeed resubscribe failed", metadata: ["feed": "\(id)", "code": "\(failure.code)"])
            }
        }
    }

    /// The failures a feed resumes after: its connection was lost, the server skipped changes, or
    /// the table became unavailable (`Changefeed aborted (table unavailable).` on a failover).
    static func resumesAfter(_ error: HostError) -> Bool {
        error.code == .rethinkConnectionLost || error.code == .rethinkUnreachable || error.code == .rethinkFeedSkipped
            || error.code == .rethinkUnavailable
    }

    /// The server's notice, inside the feed, that its queue overflowed and changes were skipped:
    /// `{"error":"Changefeed cache over array size limit, skipped N elements."}`.
    static func skipNotice(_ item: JSONValue) -> String? {
        guard let object = item.objectValue, object.count == 1, let message = object["error"]?.stringValue,
            message.hasPrefix("Changefeed cache over array size limit")
        else { return nil }
        return message
    }
}

/// Skip-resumes that follow each other closely: the worker backs off by how many came just before.
struct SkipStreak {
    let window: Duration
    private var earlier = 0
    private var last: ContinuousClock.Instant?

    init(window: Duration) {
        self.window = window
    }

    /// Records a skip at `now`; returns how many skips came before it without a quiet `window` between.
    mutating func record(at now: ContinuousClock.Instant) -> Int {
        if let last, now - last < window {
            earlier += 1
        } else {
            earlier = 0
        }
        last = now
        return earlier
    }
}
