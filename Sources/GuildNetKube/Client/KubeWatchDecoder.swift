import GuildNetCore
import NIOCore

/// Decodes a watch body, chunk by chunk, into events: newline-delimited JSON lines, each
/// `{"type": …, "object": {…}}` (an `ERROR` event's object is a `Status`). ``KubeWatchStream`` feeds
/// it every chunk it receives; it is public so the watch fuzz target (Fuzz/) drives the same code.
public struct KubeWatchDecoder: Sendable {
    private var splitter: KubeWatchLineSplitter
    let request: String

    /// - Parameters:
    ///   - maxLineBytes: the longest event line accepted (``KubeClientOptions/maxWatchLineBytes``).
    ///   - request: the request's description, quoted in errors.
    public init(maxLineBytes: Int, request: String) {
        self.splitter = KubeWatchLineSplitter(maxLineBytes: maxLineBytes)
        self.request = request
    }

    /// The longest event line accepted.
    public var maxLineBytes: Int { splitter.maxLineBytes }

    /// The events completed by `chunk` (possibly none).
    /// - Throws: `k8s_bad_response` for a line longer than ``maxLineBytes`` or a malformed event.
    public mutating func decode(_ chunk: ByteBuffer) throws(HostError) -> [KubeWatchEvent] {
        let lines: [[UInt8]]
        do {
            lines = try splitter.append(chunk)
        } catch {
            throw HostError.kubeBadResponse(request, "watch event longer than \(splitter.maxLineBytes) bytes")
        }
        var events: [KubeWatchEvent] = []
        events.reserveCapacity(lines.count)
        for line in lines {
            events.append(try KubeWatchEvent.decode(line: line, request: request))
        }
        return events
    }

    /// Checks the end of the body.
    /// - Throws: `k8s_bad_response` when the body ended in the middle of an event.
    public func finish() throws(HostError) {
        if splitter.hasPartialLine { throw HostError.kubeBadResponse(request, "watch stream ended in the middle of an event") }
    }
}
