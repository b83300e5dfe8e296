import GuildNetCore
import NIOCore
import NIOPosix
import NIOSSL

/// A byte stream to the cluster's API server (through its TLS, proxy and route), for relaying
/// whole HTTP/1.1 exchanges: the host proxy sends a request head it rewrote, then copies bytes.
public struct KubeRawConnection: Sendable {
    public let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    /// The `Authorization` value of the cluster's credentials, if they are a header (secret).
    public let authorization: String?
    /// The `Host` header value the API server expects.
    public let hostHeader: String
    /// The server URL's path prefix (`""` for most servers), to put before request paths.
    public let pathPrefix: String
}

extension KubeClient {
    /// Opens one connection to the API server the way tunnels do (the cluster's TLS with ALPN
    /// `http/1.1`, client certificate, proxy), with the current credential's header.
    /// - Throws: `k8s_transport` when the server cannot be reached.
    public func openRawConnection() async throws -> KubeRawConnection {
        if isShutDown.withLock({ $0 }) {
            throw HostError(.k8sUnavailable, "the Kubernetes client of \(server) was shut down")
        }
        let credential = try await authenticator.current()
        let target = tunnelTarget
        let sslContext = try tunnelSSLContext(credential.tls)
        let sniName: String? = target.serverNameIsAddress ? nil : target.serverName
        let (connectHost, connectPort) = target.proxy.map(\.address) ?? (target.host, target.port)
        let deadline = options.connectTimeout
        counters.request()
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.nanoseconds(Int64(deadline.seconds * 1e9)))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: connectHost, port: connectPort) { channel in
                    Self.throughProxy(target, channel: channel, deadline: deadline).flatMapThrowing {
                        if let sslContext {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: sniName))
                        }
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            return KubeRawConnection(
                channel: channel, authorization: credential.authorization, hostHeader: target.hostHeader, pathPrefix: target.pathPrefix)
        } catch {
            let hostError = HostError.kubeTransport("connection to \(server)", Self.describe(error))
            counters.failure(hostError)
            throw hostError
        }
    }
}
