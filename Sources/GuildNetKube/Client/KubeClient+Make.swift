import AsyncHTTPClient
import Foundation
import GuildNetCore
import Logging
import NIOCore
import NIOSSL

extension KubeClient {
    /// THE factory of Kubernetes clients: every cluster's client is built here, each with a new
    /// `HTTPClient` (its own connection pool), a new rate limiter and its own credential state.
    ///
    /// - TLS trusts exactly the cluster's CA when one is given (the system roots otherwise), or
    ///   nothing is verified with `insecure-skip-tls-verify`; `tls-server-name` sets the name
    ///   verified and sent as SNI.
    /// - Client certificate + key, bearer token, token file, basic auth or an exec plugin.
    /// - `proxy-url`: `socks5://` → SOCKS5, `http(s)://` → HTTP CONNECT proxy.
    /// - HTTP/2 when the server offers it (ALPN), else HTTP/1.1.
    public static func make(config: KubeClusterConfig, options: KubeClientOptions = KubeClientOptions(), logger: Logger) throws -> KubeClient {
        guard let url = URL(string: config.server), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
            let host = url.host, !host.isEmpty
        else { throw HostError(.kubeconfigInvalid, "kubeconfig field server must be an https:// URL with a host") }

        var tls: TLSConfiguration?
        if scheme == "https" {
            var configuration = TLSConfiguration.makeClientConfiguration()
            // Closing a connection (a cancelled watch, shutdown) sends close_notify and waits at most
            // this long for the server's: a server busy streaming may never answer, and NIO's 5 s
            // default would keep every cancelled watch's socket open that long. Go clients do not wait.
            configuration.shutdownTimeout = .milliseconds(100)
            if config.insecureSkipTLSVerify {
                configuration.certificateVerification = .none
            } else if let caPEM = config.caPEM {
                do {
                    let roots = try NIOSSLCertificate.fromPEMBytes(caPEM)
                    guard !roots.isEmpty else { throw HostError(.kubeconfigInvalid, "empty") }
                    configuration.trustRoots = .certificates(roots)
                } catch {
                    throw HostError(.kubeconfigInvalid, "kubeconfig field certificate-authority does not hold a PEM certificate")
                }
            }
            if case .clientCertificate(let certificatePEM, let keyPEM) = config.credentials {
                do {
                    configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificatePEM).map { .certificate($0) }
                } catch {
                    throw HostError(.kubeconfigInvalid, "kubeconfig field client-certificate does not hold a PEM certificate")
                }
                do {
                    configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: keyPEM, format: .pem))
                } catch {
                    throw HostError(.kubeconfigInvalid, "kubeconfig field client-key does not hold a PEM private key")
                }
            }
            tls = configuration
        }

        let proxy = try proxy(config.proxyURL)

        // tls-server-name: request the server by that name (verified and sent as SNI) and let the
        // DNS override connect to the real host.
        var trimmedServer = config.server
        while trimmedServer.hasSuffix("/") { trimmedServer.removeLast() }
        var baseURL = trimmedServer
        var dnsOverride: [String: String] = [:]
        if let serverName = config.tlsServerName, !serverName.isEmpty, serverName != host,
            var components = URLComponents(string: baseURL)
        {
            components.host = serverName
            if let rewritten = components.string {
                baseURL = rewritten
                dnsOverride[serverName] = host
            }
        }

        let nanos = { (duration: Duration) in TimeAmount.nanoseconds(Int64(duration.seconds * 1e9)) }
        var pool = HTTPClient.Configuration.ConnectionPool(
            idleTimeout: nanos(options.idleConnectionTimeout),
            concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, options.maxConnections))
        // A refused or failed connection fails the request at once: callers (informers) back off themselves.
        pool.retryConnectionEstablishment = false
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow,
            timeout: .init(connect: nanos(options.connectTimeout), read: nanos(options.watchIdleTimeout)),
            connectionPool: pool, proxy: proxy, ignoreUncleanSSLShutdown: false, decompression: .disabled)
        configuration.httpVersion = .automatic
        configuration.dnsOverride = dnsOverride

        let tunnelTarget = try KubeTunnelTarget(
            url: url, host: host, tls: tls, serverName: config.tlsServerName, proxyURL: config.proxyURL,
            connectTimeout: options.connectTimeout)
        let authenticator = KubeAuthenticator(config: config, baseTLS: tls)
        // Created last: nothing above may throw once the HTTPClient exists (it must be shut down).
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration, backgroundActivityLogger: disabledLogger)
        var relayConfiguration = configuration
        relayConfiguration.timeout.read = nil
        let relayHTTP = HTTPClient(
            eventLoopGroupProvider: .singleton, configuration: relayConfiguration, backgroundActivityLogger: disabledLogger)
        return KubeClient(
            server: trimmedServer, baseURL: baseURL,
            defaultNamespace: config.namespace, options: options, http: http, relayHTTP: relayHTTP, tunnelTarget: tunnelTarget, authenticator: authenticator,
            logger: logger)
    }

    /// `proxy-url` as an AsyncHTTPClient proxy (parsed by ``KubeTunnelTarget/proxy(_:)``).
    static func proxy(_ text: String?) throws -> HTTPClient.Configuration.Proxy? {
        switch try KubeTunnelTarget.proxy(text) {
        case nil: nil
        case .socks5(let host, let port)?: .socksServer(host: host, port: port)
        case .httpConnect(let host, let port, let credentials)?:
            .server(host: host, port: port, authorization: credentials.map { .basic(username: $0.username, password: $0.password) })
        }
    }

    private static let disabledLogger = Logger(label: "guildnet.kube.ahc", factory: { _ in SwiftLogNoOpLogHandler() })
}
