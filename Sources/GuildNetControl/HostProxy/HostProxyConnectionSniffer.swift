import NIOCore
import NIOHTTP1

/// How one client connection of the host proxy is served, chosen from its first request head.
enum HostProxyConnection: Sendable {
    /// Keep-alive HTTP/1.1: NIO parses every request and frames every response; each exchange is
    /// relayed over the cluster's pooled connections.
    case http(NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>)
    /// An upgrade (exec, attach, port-forward): the head is rewritten and relayed on its own
    /// connection to the API server, then bytes are copied both ways for as long as it lasts.
    case upgrade(NIOAsyncChannel<ByteBuffer, ByteBuffer>)
}

/// The first handler after TLS: buffers the first request head, then installs the pipeline that
/// serves the connection (NIO's HTTP server codec, or nothing for an upgrade), hands the
/// buffered bytes on to it and leaves the pipeline.
///
/// Clients open a new connection for each upgrade (client-go's SPDY and WebSocket dialers do), so
/// the first request decides. A later upgrade on a keep-alive connection is refused with 400.
final class HostProxyConnectionSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var buffered: ByteBuffer?
    private var decided = false
    private let promise: EventLoopPromise<HostProxyConnection>
    private let maxHeadBytes: Int

    init(promise: EventLoopPromise<HostProxyConnection>, maxHeadBytes: Int) {
        self.promise = promise
        self.maxHeadBytes = maxHeadBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        guard !decided else {
            // Bytes that arrived between the decision and the removal: kept in order.
            buffered.setOrWriteBuffer(&incoming)
            return
        }
        buffered.setOrWriteBuffer(&incoming)
        guard let bytes = buffered?.readableBytesView else { return }
        let end: [UInt8] = [13, 10, 13, 10]
        guard let range = bytes.firstRange(of: end) else {
            if bytes.count > maxHeadBytes {
                // NIO's decoder answers 400 to an over-long head; hand it over as a plain request.
                install(context: context, upgrade: false)
            }
            return
        }
        let head = ProxyRequestHead(Array(bytes[bytes.startIndex..<range.lowerBound]))
        install(context: context, upgrade: head?.isUpgrade == true)
    }

    private func install(context: ChannelHandlerContext, upgrade: Bool) {
        decided = true
        do {
            let connection: HostProxyConnection
            if upgrade {
                connection = .upgrade(try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: context.channel))
            } else {
                try context.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                connection = .http(
                    try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: context.channel))
            }
            promise.succeed(connection)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        } catch {
            promise.fail(error)
            context.close(promise: nil)
        }
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        if let bytes = buffered {
            buffered = nil
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        context.leavePipeline(removalToken: removalToken)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !decided {
            decided = true
            promise.fail(ChannelError.eof)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !decided {
            decided = true
            promise.fail(error)
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }
}
