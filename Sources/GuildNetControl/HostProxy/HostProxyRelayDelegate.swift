import AsyncHTTPClient
import GuildNetCore
import NIOCore
import NIOHTTP1

/// Writes a relayed reply to the client's channel as AsyncHTTPClient delivers it, on the
/// channel's own event loop (no thread change per chunk: a watch event is forwarded the moment
/// it is read). Each body part is written and flushed before the next is read (backpressure).
final class HostProxyRelayDelegate: HTTPClientResponseDelegate {
    typealias Response = Void

    private let channel: any Channel
    private let headSent = LockedValue(false)

    init(channel: any Channel) {
        self.channel = channel
    }

    /// `true` once the reply head went to the client: from then on a failure can only close it.
    var replyStarted: Bool { headSent.withLock { $0 } }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        // NIO's encoder frames the reply: the server's Content-Length is kept, chunking is redone.
        var headers = HTTPHeaders()
        for (name, value) in head.headers {
            let lower = name.lowercased()
            if lower == "content-length" || !ProxyRequestHead.notRelayed.contains(lower) { headers.add(name: name, value: value) }
        }
        headSent.withLock { $0 = true }
        let part = HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: headers))
        // A reply of known length is flushed with its body; any other (a watch) at once.
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > 0 {
            channel.write(part, promise: nil)
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        return channel.writeAndFlush(part)
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer)))
    }

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {}
}
