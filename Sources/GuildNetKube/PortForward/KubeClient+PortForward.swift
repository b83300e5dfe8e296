import GuildNetCore
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSOCKS
import NIOSSL
import NIOWebSocket

extension KubeClient {
    /// Opens one port-forward tunnel to `port` of `pod`: a WebSocket to `pods/{pod}/portforward`
    /// (offering `v5.channel.k8s.io` then `v4.channel.k8s.io`) through this cluster's own
    /// connection settings and credentials. One tunnel carries one local connection.
    ///
    /// - Throws: `k8s_not_found` (no such pod), `k8s_unauthorized` / `k8s_forbidden`, other
    ///   `k8s_*` codes from the server's Status, `k8s_transport` when the server cannot be
    ///   reached, `k8s_port_forward_failed` when the server does not upgrade properly.
    public func openPortForward(namespace: String, pod: String, port: Int) async throws -> PortForwardTunnel {
        guard PortForwardProtocol.portRange.contains(port) else {
            throw HostError(.invalidField, "port \(port) is out of range 1...65535")
        }
        let description = "port-forward \(namespace)/\(pod):\(port)"
        var refreshedCredential = false
        while true {
            try Task.checkCancellation()
            if isShutDown.withLock({ $0 }) {
                throw HostError(.k8sUnavailable, "\(description): the Kubernetes client was shut down")
            }
            // Not throttled by the client's QPS limiter: a tunnel carries one user connection (kubectl's
            // port-forward streams are not throttled either), and at `kube.qps` 50 every new local
            // connection would wait 20 ms. Tunnel upgrades still count as requests.
            let credential = try await authenticator.current()
            counters.request()
            let outcome: TunnelUpgrade
            do {
                // Not `withDeadline`: a child task could drop an upgraded channel on a timeout race.
                // The deadline closes the connection instead (see `upgrade`).
                outcome = try await upgrade(namespace: namespace, pod: pod, port: port, credential: credential)
            } catch {
                if Task.isCancelled || error is CancellationError { throw CancellationError() }
                let hostError = (error as? HostError) ?? .kubeTransport(description, Self.describe(error))
                counters.failure(hostError)
                throw hostError
            }
            switch outcome {
            case .upgraded(let channel, let subprotocol):
                guard let subprotocol, PortForwardProtocol.offeredSubprotocols.contains(subprotocol) else {
                    try? await channel.executeThenClose { _, _ in }
                    let error = HostError(
                        .k8sPortForwardFailed,
                        "\(description): the server chose subprotocol \(String(reflecting: subprotocol ?? "")), not one of \(PortForwardProtocol.offeredSubprotocols.joined(separator: ", "))",
                        transient: false)
                    counters.failure(error)
                    throw error
                }
                return PortForwardTunnel(channel: channel, subprotocol: subprotocol, port: port, counters: counters)
            case .refused(let status, let body):
                let apiError = KubeAPIError.decode(statusCode: status, body: body, retryAfterHeader: nil, request: description)
                counters.failure(apiError.hostError)
                if status == 401, authenticator.refreshable, !refreshedCredential {
                    refreshedCredential = true
                    counters.retry()
                    await authenticator.invalidate()
                    continue
                }
                throw apiError.hostError
            }
        }
    }

    /// What the upgrade request got.
    enum TunnelUpgrade: Sendable {
        case upgraded(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, subprotocol: String?)
        /// A reply other than `101`: its status and (the start of) its body.
        case refused(status: Int, body: [UInt8])
    }

    /// What the pipeline produced: a WebSocket, or the HTTP reply to read.
    private enum PipelineOutcome: Sendable {
        case upgraded(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, subprotocol: String?)
        case notUpgraded(NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>)
    }

    /// Largest frame accepted from the server, and largest error body read from a refusal.
    static let maxTunnelFrame = 1 << 20
    static let maxRefusalBody = 64 << 10

    private func upgrade(namespace: String, pod: String, port: Int, credential: KubeAuthenticator.Applied) async throws -> TunnelUpgrade {
        let target = tunnelTarget
        let sslContext = try tunnelSSLContext(credential.tls)
        var head = HTTPRequestHead(
            version: .http1_1, method: .GET,
            uri: target.pathPrefix + PortForwardProtocol.path(namespace: namespace, pod: pod) + "?ports=\(port)")
        head.headers.add(name: "Host", value: target.hostHeader)
        head.headers.add(name: "User-Agent", value: options.userAgent)
        head.headers.add(name: "Sec-WebSocket-Protocol", value: PortForwardProtocol.offeredSubprotocols.joined(separator: ", "))
        if let authorization = credential.authorization { head.headers.add(name: "Authorization", value: authorization) }
        let requestHead = head
        let sniName: String? = target.serverNameIsAddress ? nil : target.serverName

        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.nanoseconds(Int64(target.connectTimeout.seconds * 1e9)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: PortForwardTunnel.receiveAllocator)
        // The connection, so a cancelled upgrade (the caller gave up) closes it: NIO futures do
        // not observe task cancellation. The deadline of the TLS handshake and upgrade closes it too.
        let opened = LockedValue<(any Channel)?>(nil)
        let timedOut = LockedValue(false)
        let deadline = options.requestTimeout
        let (connectHost, connectPort) = target.proxy.map(\.address) ?? (target.host, target.port)
        let upgradeResult: EventLoopFuture<PipelineOutcome>
        do {
            upgradeResult = try await bootstrap.connect(host: connectHost, port: connectPort) { channel in
                opened.withLock { $0 = channel }
                let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(deadline.seconds * 1e9))) {
                    timedOut.withLock { $0 = true }
                    channel.close(promise: nil)
                }
                return Self.throughProxy(target, channel: channel, deadline: deadline).flatMapThrowing {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: sniName))
                    }
                    let upgrader = TunnelWebSocketUpgrader<PipelineOutcome>(maxFrameSize: Self.maxTunnelFrame) { channel, response in
                        channel.eventLoop.makeCompletedFuture {
                            let websocket = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel)
                            return PipelineOutcome.upgraded(websocket, subprotocol: response.headers.first(name: "Sec-WebSocket-Protocol"))
                        }
                    }
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<PipelineOutcome>(
                        upgradeRequestHead: requestHead, upgraders: [upgrader]
                    ) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            PipelineOutcome.notUpgraded(
                                try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel))
                        }
                    }
                    var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                    // The server's first frames (the port prefixes) often arrive in the same read as
                    // its 101 reply: they must reach the WebSocket decoder, not be dropped.
                    pipeline.leftOverBytesStrategy = .forwardBytes
                    let upgraded = try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: pipeline)
                    upgraded.whenComplete { _ in timer.cancel() }
                    return upgraded
                }
            }
        } catch {
            let via = target.proxy == nil ? "" : " through the proxy \(connectHost):\(connectPort)"
            throw HostError.kubeTransport(
                "port-forward \(namespace)/\(pod):\(port)", "cannot connect to \(target.host):\(target.port)\(via): \(Self.describe(error))")
        }
        let outcome: PipelineOutcome
        do {
            outcome = try await withTaskCancellationHandler {
                try await upgradeResult.get()
            } onCancel: {
                opened.withLock { $0 }?.close(promise: nil)
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            let what = "port-forward \(namespace)/\(pod):\(port)"
            if timedOut.withLock({ $0 }) { throw HostError.kubeTransport(what, "no upgrade within \(deadline)") }
            throw HostError.kubeTransport(what, Self.describe(error))
        }
        switch outcome {
        case .upgraded(let websocket, let subprotocol):
            return .upgraded(websocket, subprotocol: subprotocol)
        case .notUpgraded(let http):
            return try await http.executeThenClose { inbound, _ in
                var status = 0
                var body: [UInt8] = []
                for try await part in inbound {
                    switch part {
                    case .head(let response): status = Int(response.status.code)
                    case .body(let buffer):
                        if body.count < Self.maxRefusalBody { body += buffer.readableBytesView.prefix(Self.maxRefusalBody - body.count) }
                    case .end: return TunnelUpgrade.refused(status: status, body: body)
                    }
                }
                return TunnelUpgrade.refused(status: status, body: body)
            }
        }
    }

    /// Adds the proxy stage to a new connection: a SOCKS5 handshake (its handler holds the TLS
    /// handshake's writes until the proxy connected), or an HTTP `CONNECT` whose handlers are
    /// removed once the proxy answered 2xx. Succeeds when TLS and HTTP may be added behind it.
    static func throughProxy(_ target: KubeTunnelTarget, channel: any Channel, deadline: Duration) -> EventLoopFuture<Void> {
        switch target.proxy {
        case nil:
            return channel.eventLoop.makeSucceededVoidFuture()
        case .socks5:
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(SOCKSClientHandler(targetAddress: .domain(target.host, port: target.port)))
            }
        case .httpConnect(_, _, let credentials):
            let connected = channel.eventLoop.makePromise(of: Void.self)
            var headers = HTTPHeaders()
            if let credentials { headers.add(name: "Proxy-Authorization", value: credentials.header) }
            let encoder = HTTPRequestEncoder()
            let decoder = ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes))
            let connect = NIOHTTP1ProxyConnectHandler(
                targetHost: target.host, targetPort: target.port, headers: headers,
                deadline: .now() + .nanoseconds(Int64(deadline.seconds * 1e9)), promise: connected)
            do {
                try channel.pipeline.syncOperations.addHandlers([encoder, decoder, connect])
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
            // The handlers were made on this event loop and the promise completes on it.
            return connected.futureResult.assumeIsolated().flatMap {
                let sync = channel.pipeline.syncOperations
                let removed = [
                    channel.eventLoop.makePromise(of: Void.self), channel.eventLoop.makePromise(of: Void.self),
                    channel.eventLoop.makePromise(of: Void.self),
                ]
                sync.removeHandler(connect, promise: removed[0])
                sync.removeHandler(decoder, promise: removed[1])
                sync.removeHandler(encoder, promise: removed[2])
                return EventLoopFuture.andAllSucceed(removed.map(\.futureResult), on: channel.eventLoop)
            }.nonisolated()
        }
    }

    /// The TLS context of tunnels: built once per client for its kubeconfig credentials (an exec
    /// plugin's client certificate gets its own per call).
    func tunnelSSLContext(_ credentialTLS: TLSConfiguration?) throws -> NIOSSLContext? {
        if var perCredential = credentialTLS {
            perCredential.applicationProtocols = ["http/1.1"]
            return try NIOSSLContext(configuration: perCredential)
        }
        guard let tls = tunnelTarget.tls else { return nil }
        return try tunnelContext.withLock { cached in
            if let cached { return cached }
            let context = try NIOSSLContext(configuration: tls)
            cached = context
            return context
        }
    }
}
