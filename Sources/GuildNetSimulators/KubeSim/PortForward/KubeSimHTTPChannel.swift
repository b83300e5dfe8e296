import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// KubeSim's child channel (under HummingbirdTLS): HTTP/1.1 served by Hummingbird's `handleHTTP`,
/// except that requests to `pods/{name}/portforward` may upgrade (NIO's typed upgrade pipeline) to a
/// WebSocket (`v4.channel.k8s.io` or `SPDY/3.1+portforward.k8s.io`) or to raw SPDY/3.1 (kubectl's
/// `POST` with `Upgrade: SPDY/3.1`). A tunnel then runs in this connection's handling task.
struct KubeSimHTTPChannel: ServerChildChannel, HTTPChannelHandler {
    enum Negotiated: Sendable {
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// An upgrade was asked for and not granted: NIO's upgrade handler consumed the request, so
        /// it is answered from its recorded head (then the connection closes).
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, HTTPRequestHead)
        case webSocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, PortForwardRequest, PortForwardRequest.Subprotocol)
        case spdy(NIOAsyncChannel<ByteBuffer, ByteBuffer>, PortForwardRequest)
    }

    struct Value: ServerChildChannelValue {
        let channel: any Channel
        let negotiated: EventLoopFuture<Negotiated>
    }

    let responder: HTTPChannelHandler.Responder
    let admission: PortForwardAdmission
    let backends: PodBackends

    private var control: TunnelControl { admission.control }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture { () throws -> Value in
            let admission = self.admission
            let firstHead = NIOLoopBoundBox<HTTPRequestHead?>(nil, eventLoop: channel.eventLoop)
            let webSocket = NIOTypedWebSocketServerUpgrader<Negotiated>(
                maxFrameSize: 1 << 20,
                shouldUpgrade: { channel, head in
                    admission.admit(head, channel: channel, webSocket: true).map { admitted in
                        guard let chosen = admitted?.1 else { return nil }
                        return HTTPHeaders([("Sec-WebSocket-Protocol", chosen.rawValue)])
                    }
                },
                upgradePipelineHandler: { channel, head in
                    // Admitted a moment ago on this event loop; decided again for the request values.
                    admission.admit(head, channel: channel, webSocket: true).flatMapThrowing { admitted in
                        guard let (request, chosen) = admitted, let chosen else { throw ChannelError.inappropriateOperationForState }
                        let asyncChannel = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel)
                        return .webSocket(asyncChannel, request, chosen)
                    }
                }
            )
            let spdy = SPDYServerUpgrader(admission: admission)
            let configuration = NIOTypedHTTPServerUpgradeConfiguration<Negotiated>(
                upgraders: [webSocket, spdy],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                        if let head = firstHead.value, !head.headers[canonicalForm: "upgrade"].isEmpty {
                            return .notUpgraded(http, head)
                        }
                        return .http(http)
                    }
                }
            )
            let negotiated = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                configuration: .init(upgradeConfiguration: configuration))
            let upgradeHandler = try channel.pipeline.syncOperations.handler(type: NIOTypedHTTPServerUpgradeHandler<Negotiated>.self)
            try channel.pipeline.syncOperations.addHandler(FirstRequestHeadRecorder(firstHead), position: .before(upgradeHandler))
            return Value(channel: channel, negotiated: negotiated)
        }
    }

    func handle(value: Value, logger: Logger) async {
        let negotiated: Negotiated
        do {
            negotiated = try await value.negotiated.get()
        } catch {
            logger.debug("KubeSim connection ended before a request: \(error)")
            value.channel.close(promise: nil)
            return
        }
        let channel = value.channel
        switch negotiated {
        case .http(let http):
            await handleHTTP(asyncChannel: http, logger: logger)
            return
        case .notUpgraded(let http, let head):
            await answer(head, on: http, logger: logger)
            return
        case .webSocket, .spdy:
            break
        }
        control.register(channel)
        await withTaskCancellationHandler {
            do {
                try await tunnel(negotiated)
            } catch {
                logger.debug("KubeSim port-forward connection ended: \(error)")
            }
        } onCancel: {
            channel.close(promise: nil)
        }
        try? await channel.close()
    }

    /// Answers a request whose upgrade was not granted (the responder gives the Status), then closes.
    private func answer(_ head: HTTPRequestHead, on http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, logger: Logger) async {
        do {
            try await http.executeThenClose { _, outbound in
                let request = Request(head: try HTTPRequest(head, secure: true, splitCookie: false), body: RequestBody(buffer: ByteBuffer()))
                try await responder(request, ResponseWriter(outbound: outbound), http.channel)
            }
        } catch {
            logger.debug("KubeSim could not answer a refused upgrade: \(error)")
        }
    }

    private func tunnel(_ negotiated: Negotiated) async throws {
        switch negotiated {
        case .http, .notUpgraded:
            return
        case .webSocket(let webSocket, let request, .channelV4):
            let dialer = PodDialer(namespace: request.namespace, pod: request.pod, backends: backends)
            try await ChannelPortForwardSession(dialer: dialer, control: control, ports: request.ports).run(webSocket)
        case .webSocket(let webSocket, let request, .spdyTunnel):
            let dialer = PodDialer(namespace: request.namespace, pod: request.pod, backends: backends)
            try await webSocket.executeThenClose { inbound, outbound in
                let writer = WebSocketFrameWriter(outbound: outbound)
                var source = WebSocketMessages(inbound: inbound.makeAsyncIterator(), writer: writer, streaming: true)
                let session = SPDYPortForwardSession(dialer: dialer, control: control) { frame in try await writer.binary(frame.encoded) }
                try await session.run(source: &source)
                try? await writer.close()
            }
        case .spdy(let raw, let request):
            let dialer = PodDialer(namespace: request.namespace, pod: request.pod, backends: backends)
            try await raw.executeThenClose { inbound, outbound in
                var source = RawByteSource(inbound: inbound.makeAsyncIterator())
                let session = SPDYPortForwardSession(dialer: dialer, control: control) { frame in try await outbound.write(frame.encoded) }
                try await session.run(source: &source)
            }
        }
    }
}

/// Records the connection's first request head (the only one NIO's upgrade handler looks at), then
/// leaves the pipeline.
final class FirstRequestHeadRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    private let box: NIOLoopBoundBox<HTTPRequestHead?>

    init(_ box: NIOLoopBoundBox<HTTPRequestHead?>) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = Self.unwrapInboundIn(data) {
            box.value = head
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireChannelRead(data)
    }
}

/// The bytes of a raw upgraded connection.
struct RawByteSource: PortForwardByteSource {
    var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    mutating func next() async throws -> ByteBuffer? { try await inbound.next() }
}

/// kubectl's fallback upgrade: `POST …/portforward` with `Upgrade: SPDY/3.1` and
/// `X-Stream-Protocol-Version: portforward.k8s.io`, answered `101` with the same three headers.
struct SPDYServerUpgrader: NIOTypedHTTPServerProtocolUpgrader {
    typealias UpgradeResult = KubeSimHTTPChannel.Negotiated
    let admission: PortForwardAdmission

    let supportedProtocol = "SPDY/3.1"
    let requiredUpgradeHeaders: [String] = []

    struct NotAdmitted: Error {}

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        admission.admit(upgradeRequest, channel: channel, webSocket: false).flatMapThrowing { admitted in
            guard admitted != nil else { throw NotAdmitted() }
            var headers = HTTPHeaders()
            headers.add(name: "Connection", value: "Upgrade")
            headers.add(name: "Upgrade", value: "SPDY/3.1")
            headers.add(name: "X-Stream-Protocol-Version", value: "portforward.k8s.io")
            return headers
        }
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<UpgradeResult> {
        admission.admit(upgradeRequest, channel: channel, webSocket: false).flatMapThrowing { admitted in
            guard let (request, _) = admitted else { throw NotAdmitted() }
            return .spdy(try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel), request)
        }
    }
}
