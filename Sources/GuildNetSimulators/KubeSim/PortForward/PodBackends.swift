import GuildNetCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// The "containers" of simulated pods: real loopback listeners. Container port 80 answers any
/// HTTP/1.1 request with `200` and the pod's name; container port 8080 echoes bytes (half-close
/// aware). Closing a pod's backends closes its listeners and every connection they accepted.
final class PodBackends: Sendable {
    static let httpPort = 80
    static let echoPort = 8080

    private struct Pod {
        var listeners: [Int: any Channel] = [:]
        var accepted: [ObjectIdentifier: any Channel] = [:]
    }

    private let pods = LockedValue<[ObjectKey: Pod]>([:])
    private let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    /// Binds both backends of `namespace/name` on 127.0.0.1 (ephemeral ports).
    func start(namespace: String, name: String) async throws {
        let key = ObjectKey(namespace: namespace, name: name)
        pods.withLock { $0[key] = Pod() }
        do {
            for port in [Self.httpPort, Self.echoPort] {
                let channel = try await bind(key: key, containerPort: port)
                let kept = pods.withLock { pods -> Bool in
                    guard pods[key] != nil else { return false }
                    pods[key]?.listeners[port] = channel
                    return true
                }
                if !kept { try? await channel.close() }
            }
        } catch {
            await stop(namespace: namespace, name: name)
            throw HostError(.internalError, "KubeSim pod backend for \(name) failed to bind: \(error)")
        }
    }

    private func bind(key: ObjectKey, containerPort: Int) async throws -> any Channel {
        let podName = key.name
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [pods] channel in
                let id = ObjectIdentifier(channel)
                let admitted = pods.withLock { pods -> Bool in
                    guard pods[key] != nil else { return false }
                    pods[key]?.accepted[id] = channel
                    return true
                }
                guard admitted else { return channel.close() }
                channel.closeFuture.whenComplete { _ in
                    _ = pods.withLock { $0[key]?.accepted.removeValue(forKey: id) }
                }
                if containerPort == Self.httpPort {
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(PodNameHTTPHandler(podName: podName))
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// The loopback port serving `containerPort` of the pod, if it has one.
    func port(namespace: String, name: String, containerPort: Int) -> Int? {
        pods.withLock { $0[ObjectKey(namespace: namespace, name: name)]?.listeners[containerPort]?.localAddress?.port }
    }

    /// Closes the pod's listeners and every connection they accepted.
    func stop(namespace: String, name: String) async {
        guard let pod = pods.withLock({ $0.removeValue(forKey: ObjectKey(namespace: namespace, name: name)) }) else { return }
        await Self.close(pod)
    }

    /// Closes every backend (the sim stops).
    func stopAll() async {
        let all = pods.withLock { pods -> [Pod] in
            defer { pods.removeAll() }
            return Array(pods.values)
        }
        for pod in all { await Self.close(pod) }
    }

    var listenerCount: Int { pods.withLock { $0.values.reduce(0) { $0 + $1.listeners.count } } }

    private static func close(_ pod: Pod) async {
        for channel in pod.listeners.values { try? await channel.close() }
        for channel in pod.accepted.values { try? await channel.close() }
    }
}

/// Echoes every byte; closes its output once the peer half-closes.
private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(mode: .output, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Answers every HTTP/1.1 request with `200 OK`, `text/plain`, body = the pod's name.
private final class PodNameHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let body: String
    private var keepAlive = true

    init(podName: String) { body = podName }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
        case .body:
            break
        case .end:
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            let keepAlive = self.keepAlive
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
