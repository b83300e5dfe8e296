import Dispatch
import Foundation

/// Delivers the given signals as an async stream (their default action is disabled meanwhile),
/// for the simulators' own processes and `hostapp demo`.
public final class SignalStream: Sendable {
    public let stream: AsyncStream<Int32>
    private let continuation: AsyncStream<Int32>.Continuation
    // DispatchSource objects are thread-safe; the array is never mutated after init.
    private nonisolated(unsafe) let sources: [any DispatchSourceSignal]

    public init(_ numbers: [Int32]) {
        (stream, continuation) = AsyncStream<Int32>.makeStream(bufferingPolicy: .bufferingNewest(4))
        let continuation = continuation
        sources = numbers.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
    }

    /// Stops watching the signals and ends the stream.
    public func cancel() {
        for source in sources { source.cancel() }
        continuation.finish()
    }
}
