import Foundation
import GuildNetCore
import NIOSSL

/// Where and how a raw connection to one cluster's API server is made (port-forward tunnels
/// upgrade such a connection to a WebSocket): the server's host and port, its TLS configuration
/// (the cluster's CA and client certificate, the same as its HTTP client uses), the name to
/// verify and send as SNI, and the path prefix of the server URL. Built once by the client factory.
struct KubeTunnelTarget: Sendable {
    var host: String
    var port: Int
    /// `nil` for a plain `http://` server.
    var tls: TLSConfiguration?
    /// The TLS server name (kubeconfig `tls-server-name`, else the host), also sent as `Host`.
    var serverName: String
    /// The server URL's path, without a trailing slash (`""` for most servers).
    var pathPrefix: String
    var connectTimeout: Duration
    /// Set when the kubeconfig names a `proxy-url`: tunnels do not go through proxies yet, so
    /// opening one fails with this message instead of silently bypassing the proxy.
    var unsupportedProxy: String?

    init(url: URL, host: String, tls: TLSConfiguration?, serverName: String?, proxyURL: String?, connectTimeout: Duration) throws {
        self.host = host
        let secure = tls != nil
        self.port = url.port ?? (secure ? 443 : 80)
        if var tls {
            // A tunnel is an HTTP/1.1 upgrade: never negotiate HTTP/2 on it.
            tls.applicationProtocols = ["http/1.1"]
            self.tls = tls
        } else {
            self.tls = nil
        }
        if let serverName, !serverName.isEmpty {
            self.serverName = serverName
        } else {
            self.serverName = host
        }
        var prefix = url.path
        while prefix.hasSuffix("/") { prefix.removeLast() }
        self.pathPrefix = prefix
        self.connectTimeout = connectTimeout
        if let proxyURL, !proxyURL.isEmpty {
            unsupportedProxy = "port-forward tunnels do not support the kubeconfig's proxy-url yet"
        } else {
            unsupportedProxy = nil
        }
    }

    /// The `Host` header value.
    var hostHeader: String {
        let defaultPort = tls == nil ? 80 : 443
        let name = serverName.contains(":") ? "[\(serverName)]" : serverName
        return port == defaultPort ? name : "\(name):\(port)"
    }

    /// `true` when `serverName` is an IP address literal (never sent as SNI).
    var serverNameIsAddress: Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, serverName, &v4) == 1 || inet_pton(AF_INET6, serverName, &v6) == 1
    }
}
