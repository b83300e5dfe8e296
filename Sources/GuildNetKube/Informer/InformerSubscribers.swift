import GuildNetCore

/// The subscribers of one informer and their bounded streams.
///
/// Overflow policy: each stream buffers at most its limit (plus the initial snapshot). A subscriber
/// that falls behind further loses the OLDEST queued events (`bufferingNewest`), receives
/// ``InformerEvent/overflowed(dropped:)`` as its last element and its stream ends: the informer
/// never blocks on a slow subscriber, and the subscriber knows it must resubscribe to resync.
/// Markers always fit, so the last element of every stream says why it ended.
struct InformerSubscribers {
    private var continuations: [Int: AsyncStream<InformerEvent>.Continuation] = [:]
    private var nextID = 1
    private(set) var overflows = 0
    private(set) var dropped = 0

    var count: Int { continuations.count }
    var isEmpty: Bool { continuations.isEmpty }

    /// A new stream with room for `capacity` events; `prefill` is queued before it is registered,
    /// so nothing can come between the snapshot and the live events.
    mutating func add(capacity: Int, prefill: [InformerEvent]) -> (id: Int, stream: AsyncStream<InformerEvent>) {
        let (stream, continuation) = AsyncStream<InformerEvent>.makeStream(bufferingPolicy: .bufferingNewest(max(2, capacity)))
        let id = nextID
        nextID += 1
        for event in prefill { continuation.yield(event) }
        continuations[id] = continuation
        return (id, stream)
    }

    /// A stream that holds only `event` and is already finished.
    static func finishedStream(_ event: InformerEvent) -> AsyncStream<InformerEvent> {
        let (stream, continuation) = AsyncStream<InformerEvent>.makeStream(bufferingPolicy: .bufferingNewest(1))
        continuation.yield(event)
        continuation.finish()
        return stream
    }

    /// Delivers `event` to every subscriber, ending the streams that overflow or were dropped.
    mutating func emit(_ event: InformerEvent) {
        guard !continuations.isEmpty else { return }
        var overflowed: [Int] = []
        var gone: [Int] = []
        for (id, continuation) in continuations {
            switch continuation.yield(event) {
            case .enqueued: break
            case .dropped: overflowed.append(id)
            case .terminated: gone.append(id)
            @unknown default: break
            }
        }
        for id in gone { continuations[id] = nil }
        for id in overflowed {
            guard let continuation = continuations.removeValue(forKey: id) else { continue }
            // One event was evicted to make room, and the marker evicts another.
            overflows += 1
            dropped += 2
            continuation.yield(.overflowed(dropped: 2))
            continuation.finish()
        }
    }

    mutating func emit(_ events: [InformerEvent]) {
        guard !continuations.isEmpty else { return }
        for event in events { emit(event) }
    }

    /// Ends one subscription with `event`; false when `id` is unknown.
    mutating func remove(_ id: Int, with event: InformerEvent) -> Bool {
        guard let continuation = continuations.removeValue(forKey: id) else { return false }
        continuation.yield(event)
        continuation.finish()
        return true
    }

    /// Ends every subscription with `event`.
    mutating func finishAll(_ event: InformerEvent) {
        let all = continuations
        continuations.removeAll()
        for continuation in all.values {
            continuation.yield(event)
            continuation.finish()
        }
    }
}
