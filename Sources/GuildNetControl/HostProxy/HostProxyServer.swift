import GuildNetCore
import GuildNetKube
import GuildNetRuntime
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// `hostapp serve --proxy-addr 127.0.0.1:PORT`: an HTTPS reverse proxy serving
/// `/clusters/{cluster}/…` from that cluster's API server over its chosen route, for kubectl.
///
/// Every request's bearer token is checked first (401 without the right one: nothing reaches a
/// cluster); its path is stripped of `/clusters/{cluster}` and the caller's `Authorization`
/// replaced by the cluster's credentials. Client connections are kept alive, and requests are
/// relayed over the cluster's own pool of keep-alive connections (its TLS, proxy and route), so a
/// request pays no handshake on either side once connections are warm; replies (chunked watch
/// streams included) are streamed as they arrive. A connection that opens with an upgrade (exec,
/// attach, port-forward) is relayed as bytes on its own connection to the API server instead.
/// ``HostProxyConnectionSniffer`` tells the two apart.
public final class HostProxyServer: Sendable {
    public let credentials: HostProxyCredentials
    private let host: HostActor
    private let bindHost: String
    private let bindPort: Int
    let logger: Logger
    private let boundPort = LockedValue<Int?>(nil)

    /// Largest request head accepted.
    static let maxHeadBytes = 64 << 10
    /// Largest request body relayed (413 beyond): Kubernetes objects are far smaller (the API
    /// server's own default limit is 3 MiB).
    static let maxRequestBodyBytes = 32 << 20

    public init(host: HostActor, address: (host: String, port: Int), credentials: HostProxyCredentials, logger: Logger) {
        self.host = host
        self.bindHost = address.host
        self.bindPort = address.port
        self.credentials = credentials
        self.logger = logger
    }

    /// The listening port once bound.
    public var port: Int? { boundPort.withLock { $0 } }

    /// The base URL of `cluster` on this proxy.
    public func url(of cluster: String) -> String? {
        port.map { "https://\(bindHost == "0.0.0.0" ? "127.0.0.1" : bindHost):\($0)/clusters/\(cluster)" }
    }

    /// Listens until cancelled; `onListening` gets the port.
    public func run(onListening: @Sendable (Int) async -> Void = { _ in }) async throws {
        let context = try credentials.serverContext()
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.autoRead, value: false)  // until served (AcceptedConnection)
            .bind(host: bindHost, port: bindPort, childChannelInitializer: AcceptedConnection.initializer)
        let port = listener.channel.localAddress?.port ?? bindPort
        boundPort.withLock { $0 = port }
        logger.info("host proxy listening", metadata: ["event": "proxy_listening", "port": .stringConvertible(port)])
        await onListening(port)
        try await withTaskCancellationHandler {
            try await listener.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection, tls: context) }
                    }
                }
            }
        } onCancel: {
            listener.channel.close(promise: nil)
        }
    }

    // MARK: Connections

    private func serve(_ accepted: AcceptedConnection, tls context: NIOSSLContext) async {
        // TLS, then the sniffer that wraps the connection for async use once its first request
        // head says how to serve it.
        let chosen = accepted.channel.eventLoop.makePromise(of: HostProxyConnection.self)
        let sniffing = LockedValue(false)
        do {
            try await accepted.activate { pipeline in
                try pipeline.addHandler(NIOSSLServerHandler(context: context))
                try pipeline.addHandler(HostProxyConnectionSniffer(promise: chosen, maxHeadBytes: Self.maxHeadBytes))
                sniffing.withLock { $0 = true }
            }
        } catch {
            // Once the sniffer is in, it settles the promise (the channel was closed: as EOF).
            if !sniffing.withLock({ $0 }) { chosen.fail(error) }
        }
        // A connection that closes or fails before its first request head has nothing to serve.
        guard let connection = try? await chosen.futureResult.get() else { return }
        switch connection {
        case .http(let channel): await serveKeepAlive(channel)
        case .upgrade(let channel): await serveUpgrade(channel)
        }
    }

    /// Where a request goes: refused by the proxy, or to a cluster's client with the path to ask.
    enum Destination {
        case refused(HostProxyStatus)
        case cluster(KubeClient, path: String)
    }

    /// Checks the token, then finds the cluster named in the path.
    func route(_ request: ProxyRequestHead) async -> Destination {
        guard let presented = request.bearerToken, credentials.accepts(presented) else {
            return .refused(HostProxyStatus(401, "Unauthorized"))
        }
        guard let (clusterName, rest) = request.clusterPath else {
            return .refused(HostProxyStatus(404, "paths are /clusters/{cluster}/…"))
        }
        do {
            let cluster = try await host.cluster(named: clusterName)
            return .cluster(try await cluster.kube.requireClient(), path: rest)
        } catch {
            let failure = HostError.wrapping(error, as: .k8sTransport)
            return .refused(HostProxyStatus(failure.code == .clusterNotFound ? 404 : 502, failure.message))
        }
    }
}
