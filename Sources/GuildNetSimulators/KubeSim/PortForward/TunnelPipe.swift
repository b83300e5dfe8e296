import GuildNetCore
import NIOCore

/// A bounded byte queue from a connection's frame reader to one tunnel's backend writer: `push`
/// suspends while more than ``highWater`` bytes wait, so a slow backend slows its own stream (and
/// the reader of its connection) instead of buffering without limit.
final class TunnelPipe: Sendable {
    static let highWater = 1 << 20

    enum End: Equatable, Sendable {
        /// The peer half-closed the stream (FIN): the backend's output is closed after the queue drains.
        case finished
        /// The stream was reset or the tunnel ended: drop everything.
        case cancelled
    }

    private struct State {
        var queue: [ByteBuffer] = []
        var queued = 0
        var end: End?
        var consumer: CheckedContinuation<Void, Never>?
        var producers: [CheckedContinuation<Void, Never>] = []
    }

    private let state = LockedValue(State())

    /// Queues `bytes`; waits while the queue is over the high-water mark.
    func push(_ bytes: ByteBuffer) async {
        let consumer = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.end == nil else { return nil }
            state.queue.append(bytes)
            state.queued += bytes.readableBytes
            defer { state.consumer = nil }
            return state.consumer
        }
        consumer?.resume()
        while state.withLock({ $0.end == nil && $0.queued > Self.highWater }) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    guard state.end == nil, state.queued > Self.highWater else { return true }
                    state.producers.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// Ends the pipe (`.finished` keeps what is queued; `.cancelled` drops it). The first end wins.
    func end(_ end: End) {
        let (consumer, producers) = state.withLock { state -> (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) in
            if state.end == nil || end == .cancelled { state.end = end }
            if end == .cancelled {
                state.queue.removeAll()
                state.queued = 0
            }
            defer {
                state.consumer = nil
                state.producers.removeAll()
            }
            return (state.consumer, state.producers)
        }
        consumer?.resume()
        for producer in producers { producer.resume() }
    }

    /// The next queued bytes; nil once the pipe ended and (for `.finished`) drained. With
    /// `.cancelled`, throws `CancellationError`. Cancelling the calling task cancels the pipe.
    func pop() async throws -> ByteBuffer? {
        while true {
            let (next, end, producers) = state.withLock { state -> (ByteBuffer?, End?, [CheckedContinuation<Void, Never>]) in
                if state.end == .cancelled { return (nil, .cancelled, []) }
                guard !state.queue.isEmpty else { return (nil, state.end, []) }
                let next = state.queue.removeFirst()
                state.queued -= next.readableBytes
                guard state.queued <= Self.highWater / 2 else { return (next, nil, []) }
                defer { state.producers.removeAll() }
                return (next, nil, state.producers)
            }
            for producer in producers { producer.resume() }
            if let next { return next }
            switch end {
            case .cancelled: throw CancellationError()
            case .finished: return nil
            case nil: break
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        guard state.queue.isEmpty, state.end == nil, !Task.isCancelled else { return true }
                        state.consumer = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                self.end(.cancelled)
            }
        }
    }
}
