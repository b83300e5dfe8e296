import AsyncHTTPClient
import GuildNetCore
import NIOCore

/// The events of one watch request, decoded incrementally from the chunked body. Iterate it once.
///
/// Ends (`nil`) when the server closes the stream cleanly (its `timeoutSeconds` passed); throws a
/// `k8s_transport` ``HostError`` when the connection breaks, `k8s_bad_response` for a garbled or
/// oversized line, and `CancellationError` when the consuming task is cancelled. Cancelling the
/// consuming task (or dropping the stream) cancels the HTTP request and closes its connection.
public struct KubeWatchStream: AsyncSequence, Sendable {
    public typealias Element = KubeWatchEvent

    let body: HTTPClientResponse.Body
    let lease: WatchLease
    let request: String
    let maxLineBytes: Int

    public func makeAsyncIterator() -> Iterator {
        Iterator(
            body: body.makeAsyncIterator(), decoder: KubeWatchDecoder(maxLineBytes: maxLineBytes, request: request), lease: lease,
            request: request)
    }

    public struct Iterator: AsyncIteratorProtocol {
        private var body: HTTPClientResponse.Body.AsyncIterator
        private var decoder: KubeWatchDecoder
        private let lease: IteratorLease
        private let request: String
        private var ready: [KubeWatchEvent] = []
        private var readyIndex = 0
        private var done = false

        init(body: HTTPClientResponse.Body.AsyncIterator, decoder: KubeWatchDecoder, lease: WatchLease, request: String) {
            self.body = body
            self.decoder = decoder
            self.lease = IteratorLease(lease)
            self.request = request
        }

        /// The next event.
        public mutating func next() async throws -> KubeWatchEvent? {
            while readyIndex >= ready.count {
                guard let batch = try await nextBatch() else { return nil }
                ready = batch
                readyIndex = 0
            }
            let event = ready[readyIndex]
            readyIndex += 1
            if readyIndex == ready.count {
                ready = []
                readyIndex = 0
            }
            return event
        }

        /// Every event completed by the next chunk of the body (never empty); `nil` at the clean end.
        /// Consumers that apply events in bulk (informers) use this to cross actors once per chunk.
        public mutating func nextBatch() async throws -> [KubeWatchEvent]? {
            if readyIndex < ready.count {
                let rest = Array(ready[readyIndex...])
                ready = []
                readyIndex = 0
                return rest
            }
            while !done {
                let chunk: ByteBuffer?
                do {
                    chunk = try await body.next()
                } catch {
                    finish()
                    if Task.isCancelled || error is CancellationError { throw CancellationError() }
                    throw HostError.kubeTransport(request, "watch stream broken: \(KubeClient.describe(error))")
                }
                guard let chunk else {
                    finish()
                    try decoder.finish()
                    return nil
                }
                let events: [KubeWatchEvent]
                do {
                    events = try decoder.decode(chunk)
                } catch {
                    finish()
                    throw error
                }
                if events.isEmpty { continue }
                return events
            }
            return nil
        }

        private mutating func finish() {
            done = true
            lease.lease.release()
        }
    }
}

/// Releases the watch when the iterator is dropped (breaking out of a `for try await` loop drops
/// the iterator, and with it AsyncHTTPClient cancels the request).
final class IteratorLease: Sendable {
    let lease: WatchLease

    init(_ lease: WatchLease) { self.lease = lease }

    deinit { lease.release() }
}

/// Counts a watch as open until its stream ends, its iterator or the stream itself is dropped
/// (whichever comes first).
final class WatchLease: Sendable {
    private let counters: KubeClientCounters
    private let released = LockedValue(false)

    init(counters: KubeClientCounters) {
        self.counters = counters
        counters.watchOpened()
    }

    func release() {
        let first = released.withLock { wasReleased -> Bool in
            defer { wasReleased = true }
            return !wasReleased
        }
        if first { counters.watchClosed() }
    }

    deinit { release() }
}
