import Foundation
import GuildNetCore
import GuildNetKube
import Logging

/// What a route hands the cluster's Kubernetes child: the configuration its client is built from.
///
/// - direct: the kubeconfig's own configuration.
/// - kubectl-proxy: `http://127.0.0.1:<port>` without TLS or credentials (kubectl adds them).
/// - tailnet: the kubeconfig's server, TLS and credentials through `socks5h://<proxy>` (the host
///   name is sent to the proxy unresolved, ATYP domain).
enum RouteConfig {
    static func direct(_ base: KubeClusterConfig) -> KubeClusterConfig { base }

    static func kubectlProxy(_ base: KubeClusterConfig, port: Int) -> KubeClusterConfig {
        var config = base
        config.server = "http://127.0.0.1:\(port)"
        config.caPEM = nil
        config.insecureSkipTLSVerify = false
        config.tlsServerName = nil
        config.proxyURL = nil
        config.credentials = .none
        return config
    }

    static func tailnet(_ base: KubeClusterConfig, socks5: String) -> KubeClusterConfig {
        var config = base
        config.proxyURL = "socks5h://\(socks5)"
        return config
    }
}

/// One health probe of a route: `GET /version` through a client built for that route alone (its
/// own pool, no retries), with `timeout` for the connection and the request together.
enum RouteProbe {
    struct Outcome: Sendable {
        var latency: Duration
        var error: String?
    }

    static func probe(_ config: KubeClusterConfig, timeout: Duration, logger: Logger) async -> Outcome {
        var options = KubeClientOptions()
        options.requestTimeout = timeout
        options.connectTimeout = timeout
        options.maxRetries = 0
        options.maxConnections = 1
        let clock = ContinuousClock()
        let start = clock.now
        let client: KubeClient
        do {
            client = try KubeClient.make(config: config, options: options, logger: logger)
        } catch {
            return Outcome(latency: start.duration(to: clock.now), error: describe(error))
        }
        var failure: String?
        do {
            let version = try await withDeadline(timeout, "GET /version") { try await client.rawGETJSON("/version") }
            if version["gitVersion"]?.stringValue == nil { failure = "GET /version returned no gitVersion" }
        } catch {
            failure = describe(error)
        }
        let latency = start.duration(to: clock.now)
        try? await client.shutdown()
        return Outcome(latency: latency, error: failure)
    }

    static func describe(_ error: any Error) -> String {
        if let hostError = error as? HostError { return "\(hostError.code.rawValue): \(hostError.message)" }
        return String(describing: error)
    }
}
