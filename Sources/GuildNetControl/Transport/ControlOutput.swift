import GuildNetCore
import NIOCore
import Synchronization

/// Where a connection's output lines go. Lines are written in the order ``send(_:)`` is called; the
/// transport appends "\n".
public struct ControlOutput: Sendable {
    /// Unique within the process (socket and stdio connections share one counter).
    public let connectionID: UInt64
    let queue: OutputQueue
    /// The connection's subscriptions; their pumps run in the connection's task group.
    let streams: ConnectionStreams
    /// Who is connected (socket credentials, or the stdin operator); `nil` when unknown.
    public internal(set) var peer: ControlPeer?

    init(connectionID: UInt64, queue: OutputQueue) {
        self.connectionID = connectionID
        self.queue = queue
        self.streams = ConnectionStreams(connectionID: connectionID)
    }

    /// Queues one line (no trailing newline) for writing; suspends when the connection's write buffer
    /// is full (backpressure); silently drops lines after the connection closed.
    ///
    /// If the calling task is cancelled while suspended, the line stays queued (order is kept) and
    /// the call returns without waiting for buffer space.
    public func send(_ line: [UInt8]) async {
        await queue.send(line)
    }

    /// Whether the output no longer delivers lines: the peer went away, a write failed, the server shut
    /// down, or the connection finished (after ``ControlLineHandler/connectionClosed(_:)`` returned and
    /// the remaining lines were flushed). Reading it never suspends; it is `async` for API stability.
    public var isClosed: Bool {
        get async { queue.isClosed }
    }
}

/// What the transport calls for each connection.
public protocol ControlLineHandler: Sendable {
    /// One complete request line (without the newline; a trailing "\r" is stripped; empty lines are
    /// skipped), read in arrival order on the connection's reader: returns how the line is ordered and
    /// the work that answers it. Must return quickly (parse, never wait). The returned work runs
    /// concurrently with other lines of the connection, at most
    /// ``ControlTransportConfiguration/maxInFlightPerConnection`` at once, once the lines it is
    /// ordered after (``LineSequencing``) have been answered.
    func accept(line: [UInt8]) -> AcceptedLine
    /// A line longer than the limit arrived; its bytes were discarded up to the next newline.
    func handleOversizedLine(byteCount: Int, output: ControlOutput) async
    /// The connection ended (EOF or error); called once, after every in-flight `handle()` finished.
    /// Lines sent from here are still flushed if the peer is reading; after it returns the output is
    /// flushed and closed.
    func connectionClosed(_ output: ControlOutput) async
}

/// Limits shared by the socket and stdio transports.
public struct ControlTransportConfiguration: Sendable {
    /// The longest accepted request line in bytes, excluding "\n" (and a trailing "\r"): 1 MiB.
    public var maxLineBytes: Int = 1 << 20
    /// How many `handle()` calls of one connection may run at once; reading pauses at the cap.
    public var maxInFlightPerConnection: Int = 128

    public init() {}
}

/// Process-wide connection ids, so socket and stdio connections never collide.
private let connectionIDs = Atomic<UInt64>(0)

func nextConnectionID() -> UInt64 {
    connectionIDs.wrappingAdd(1, ordering: .relaxed).newValue
}

/// The ordered, bounded queue between a connection's handlers and its single writer.
///
/// Senders append lines in lock order; when `capacityBytes` are buffered, senders wait in FIFO order.
/// The writer takes everything buffered as one batch, which then admits waiting senders.
final class OutputQueue: Sendable {
    private struct Waiter {
        let id: UInt64
        let line: [UInt8]
        var continuation: CheckedContinuation<Void, Never>?
    }

    private struct State {
        var lines: [[UInt8]] = []
        var bufferedBytes = 0
        var waiters = CircularBuffer<Waiter>()
        var consumer: CheckedContinuation<Void, Never>?
        var nextWaiterID: UInt64 = 0
        /// No more lines are accepted; the writer drains what is queued and then ends.
        var finished = false
        /// Nothing more will be written; everything queued was dropped or flushed.
        var closed = false
    }

    let capacityBytes: Int
    private let state = LockedValue(State())

    init(capacityBytes: Int = 256 << 10) {
        self.capacityBytes = max(1, capacityBytes)
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    func send(_ line: [UInt8]) async {
        enum Admission {
            case done(CheckedContinuation<Void, Never>?)
            case wait(UInt64)
        }
        let admission = state.withLock { state -> Admission in
            if state.closed || state.finished { return .done(nil) }
            if state.waiters.isEmpty && state.bufferedBytes < capacityBytes {
                state.lines.append(line)
                state.bufferedBytes += line.count + 1
                let consumer = state.consumer
                state.consumer = nil
                return .done(consumer)
            }
            state.nextWaiterID += 1
            return .wait(state.nextWaiterID)
        }
        switch admission {
        case .done(let consumer):
            consumer?.resume()
        case .wait(let id):
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let (resumeNow, consumer) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
                        if state.closed || state.finished { return (true, nil) }
                        // The writer may have taken a batch since the first check: admit directly then,
                        // so a waiter never sits behind an empty buffer.
                        if state.waiters.isEmpty && state.bufferedBytes < capacityBytes {
                            state.lines.append(line)
                            state.bufferedBytes += line.count + 1
                            let consumer = state.consumer
                            state.consumer = nil
                            return (true, consumer)
                        }
                        // Registration re-checks cancellation under the lock, so a cancellation that
                        // ran before this point is never missed.
                        let cancelled = Task.isCancelled
                        state.waiters.append(Waiter(id: id, line: line, continuation: cancelled ? nil : continuation))
                        return (cancelled, nil)
                    }
                    consumer?.resume()
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    let continuation = state.waiters[index].continuation
                    state.waiters[index].continuation = nil
                    return continuation
                }
                continuation?.resume()
            }
        }
    }

    /// The next batch of lines for the writer, or `nil` once the queue is closed or finished and drained.
    /// Cancelling the writer closes the queue.
    func nextBatch() async -> [[UInt8]]? {
        enum Step {
            case batch([[UInt8]], [CheckedContinuation<Void, Never>])
            case end, wait
        }
        while true {
            let step = state.withLock { state -> Step in
                if state.closed { return .end }
                if !state.lines.isEmpty {
                    let batch = state.lines
                    state.lines = []
                    state.bufferedBytes = 0
                    var admitted: [CheckedContinuation<Void, Never>] = []
                    while state.bufferedBytes < capacityBytes, let waiter = state.waiters.popFirst() {
                        state.lines.append(waiter.line)
                        state.bufferedBytes += waiter.line.count + 1
                        if let continuation = waiter.continuation { admitted.append(continuation) }
                    }
                    return .batch(batch, admitted)
                }
                if state.finished {
                    state.closed = true
                    return .end
                }
                return .wait
            }
            switch step {
            case .batch(let batch, let admitted):
                for continuation in admitted { continuation.resume() }
                return batch
            case .end:
                return nil
            case .wait:
                if Task.isCancelled {
                    close()
                    return nil
                }
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let resumeNow = state.withLock { state -> Bool in
                            if state.closed || state.finished || !state.lines.isEmpty || Task.isCancelled { return true }
                            state.consumer = continuation
                            return false
                        }
                        if resumeNow { continuation.resume() }
                    }
                } onCancel: {
                    close()
                }
            }
        }
    }

    /// Accepts no more lines; the writer flushes what is queued (including waiting senders) and ends.
    func finish() {
        let consumer = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            let consumer = state.consumer
            state.consumer = nil
            return consumer
        }
        consumer?.resume()
    }

    /// Drops everything queued, releases every waiting sender and the writer.
    func close() {
        let continuations = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.closed = true
            state.lines = []
            state.bufferedBytes = 0
            var continuations = state.waiters.compactMap(\.continuation)
            state.waiters.removeAll()
            if let consumer = state.consumer { continuations.append(consumer) }
            state.consumer = nil
            return continuations
        }
        for continuation in continuations { continuation.resume() }
    }
}
