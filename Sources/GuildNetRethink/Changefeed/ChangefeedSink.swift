import GuildNetCore

/// Counters shared by every feed of a connector.
final class ChangefeedCounters: Sendable {
    private let totals = LockedValue(ChangefeedStatistics())

    func update(_ body: (inout ChangefeedStatistics) -> Void) {
        totals.withLock(body)
    }

    var snapshot: ChangefeedStatistics { totals.withLock { $0 } }
}

/// One subscriber's bounded buffer: an `AsyncStream` keeping the newest `limit` events, with the
/// overflow policy applied and counted, and exactly one final `.ended`.
final class ChangefeedSink: Sendable {
    let id: ChangefeedID
    private let continuation: AsyncStream<ChangefeedEvent>.Continuation
    private let policy: ChangefeedOverflowPolicy
    private let limit: Int
    private let counters: ChangefeedCounters

    private struct State: Sendable {
        var ended = false
        var delivered = 0
        var dropped = 0
        var gaps = 0
    }

    private let state = LockedValue(State())

    private init(
        id: ChangefeedID, continuation: AsyncStream<ChangefeedEvent>.Continuation, policy: ChangefeedOverflowPolicy,
        limit: Int, counters: ChangefeedCounters
    ) {
        self.id = id
        self.continuation = continuation
        self.policy = policy
        self.limit = limit
        self.counters = counters
    }

    /// A sink and the stream its subscriber reads.
    static func make(
        id: ChangefeedID, bufferLimit: Int, policy: ChangefeedOverflowPolicy, counters: ChangefeedCounters
    ) -> (ChangefeedSink, AsyncStream<ChangefeedEvent>) {
        let limit = max(1, bufferLimit)
        let (stream, continuation) = AsyncStream<ChangefeedEvent>.makeStream(bufferingPolicy: .bufferingNewest(limit))
        return (ChangefeedSink(id: id, continuation: continuation, policy: policy, limit: limit, counters: counters), stream)
    }

    /// Called once when the subscriber stops listening (stream dropped or its task cancelled) or the sink finishes.
    func onTermination(_ handler: @escaping @Sendable () -> Void) {
        continuation.onTermination = { _ in handler() }
    }

    /// Hands `event` to the subscriber.
    /// - Returns: `false` when the subscription is over (ended, subscriber gone, or ended by overflow).
    @discardableResult
    func emit(_ event: ChangefeedEvent) -> Bool {
        guard !state.withLock({ $0.ended }) else { return false }
        switch continuation.yield(event) {
        case .enqueued:
            count(dropped: false, event: event)
            return true
        case .dropped:
            count(dropped: true, event: event)
            if policy == .end {
                finish(
                    RethinkError.feedLimit(reason: "changefeed \(id): the subscriber's buffer of \(limit) events overflowed")
                        .hostError)
                return false
            }
            return true
        case .terminated:
            state.withLock { $0.ended = true }
            return false
        @unknown default:
            return false
        }
    }

    /// Sends the final `.ended(error)` (once) and finishes the stream.
    func finish(_ error: HostError?) {
        let first = state.withLock { state in
            defer { state.ended = true }
            return !state.ended
        }
        guard first else { return }
        if case .dropped = continuation.yield(.ended(error)) { count(dropped: true, event: nil) }
        continuation.finish()
    }

    var isEnded: Bool { state.withLock { $0.ended } }

    var info: ChangefeedInfo {
        state.withLock { ChangefeedInfo(id: id, delivered: $0.delivered, dropped: $0.dropped, gaps: $0.gaps) }
    }

    private func count(dropped: Bool, event: ChangefeedEvent?) {
        let isGap = if case .gap = event { true } else { false }
        state.withLock { state in
            if event != nil { state.delivered += 1 }
            if dropped { state.dropped += 1 }
            if isGap { state.gaps += 1 }
        }
        counters.update { totals in
            if event != nil { totals.delivered += 1 }
            if dropped { totals.dropped += 1 }
        }
    }
}
