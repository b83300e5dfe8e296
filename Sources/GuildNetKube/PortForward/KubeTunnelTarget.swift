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
    /// The kubeconfig's `proxy-url`, which tunnels go through as the cluster's requests do.
    var proxy: Proxy?

    /// A proxy between the host and the API server.
    enum Proxy: Sendable, Equatable {
        /// SOCKS5 without authentication (`socks5://`, `socks5h://`); the API server's host name
        /// is sent unresolved, so only the proxy needs to resolve it.
        case socks5(host: String, port: Int)
        /// HTTP `CONNECT` (`http://`, `https://` proxy URLs), with basic credentials when the URL has them.
        case httpConnect(host: String, port: Int, credentials: Credentials?)

        /// Basic credentials of an HTTP proxy (secret: never logged).
        struct Credentials: Sendable, Equatable {
            var username: String
            var password: String

            /// The `Proxy-Authorization` header value.
            var header: String { "Basic " + Data("\(username):\(password)".utf8).base64EncodedString() }
        }

        /// Where the TCP connection goes.
        var address: (String, Int) {
            switch self {
            case .socks5(let host, let port), .httpConnect(let host, let port, _): (host, port)
            }
        }
    }

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
        proxy = try Self.proxy(proxyURL)
    }

    /// The kubeconfig's `proxy-url`: `socks5://` / `socks5h://` or `http(s)://` (with optional
    /// basic credentials). The one parser of it: the cluster's HTTP client maps the same value.
    static func proxy(_ text: String?) throws -> Proxy? {
        guard let text, !text.isEmpty else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw HostError(.kubeconfigInvalid, "kubeconfig field proxy-url must be an http://, https:// or socks5:// URL")
        }
        switch scheme {
        case "socks5", "socks5h":
            return .socks5(host: host, port: url.port ?? 1080)
        case "http", "https":
            let credentials = url.user.map { user in
                Proxy.Credentials(username: user.removingPercentEncoding ?? user, password: (url.password ?? "").removingPercentEncoding ?? "")
            }
            return .httpConnect(host: host, port: url.port ?? (scheme == "https" ? 443 : 80), credentials: credentials)
        default:
            throw HostError(.kubeconfigInvalid, "kubeconfig field proxy-url must be an http://, https:// or socks5:// URL")
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
