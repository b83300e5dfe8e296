import Dispatch
import Foundation

/// Delivers the given signals as an async stream (their default action is disabled meanwhile).
struct SignalStream {
    let stream: AsyncStream<Int32>
    private let continuation: AsyncStream<Int32>.Continuation
    private let sources: [any DispatchSourceSignal]

    init(_ numbers: [Int32]) {
        (stream, continuation) = AsyncStream<Int32>.makeStream()
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
    func cancel() {
        for source in sources { source.cancel() }
        continuation.finish()
    }
}
