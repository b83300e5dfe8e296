import Foundation
import GuildNetCore
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// How KubeSim is configured.
public struct KubeSimOptions: Sendable {
    /// Address to bind (loopback); port 0 picks a free port.
    public var host: String = "127.0.0.1"
    public var port: Int = 0
    /// The accepted bearer token.
    public var token: String = "kubesim-" + UUID().uuidString.lowercased()
    /// A token that authenticates but is refused every action (403).
    public var forbiddenToken: String? = "kubesim-forbidden-token"
    /// Pods created in `default` with phase Running before the server starts.
    public var seedPods: Int = 0
    /// Pods of a simulated ReplicaSet in `default` (`sim-<5 chars>`, labels `app: sim`), each backed
    /// by loopback servers (container port 80: HTTP answering the pod's name; 8080: TCP echo), with
    /// the Service and Endpoints `sim`; a deleted one is replaced under a new name. Created when
    /// `run()` starts, before the endpoint is reported.
    public var simulatedPods: Int = 0
    /// Events kept for watches resuming from an older resourceVersion (the compaction window).
    public var historyLimit: Int = 50_000
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    public var bookmarkInterval: Duration = .seconds(5)
    /// Watch duration when the request carries no `timeoutSeconds`.
    public var defaultWatchTimeout: Duration = .seconds(1800)
    /// Refuse (403) every HTTP request without `X-Forwarded-For`: a server reachable only through a
    /// relaying proxy such as `kubectl proxy` (which adds the header), never by a client directly.
    public var requireForwardedFor = false
    /// `status.phase` given to pods created without one.
    public var defaultPodPhase: String = "Running"
    /// Hummingbird's logger (errors only by default, so `hostapp sim` keeps stdout clean).
    public var logger: Logger = {
        var logger = Logger(label: "KubeSim")
        logger.logLevel = .error
        return logger
    }()

    public init() {}
}

/// Where a running KubeSim listens.
public struct KubeSimEndpoint: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var url: String { "https://\(host):\(port)" }
}

/// Which credentials a written kubeconfig carries.
public enum KubeSimUser: Sendable, Hashable {
    /// The client certificate signed by the sim's CA.
    case clientCertificate
    /// The configured bearer token.
    case token
    /// A token the sim does not know (401 Unauthorized).
    case wrongToken
    /// The configured forbidden token (403 Forbidden).
    case forbiddenToken
    /// A client certificate from a CA the sim does not trust (TLS handshake refused).
    case foreignClientCertificate
    /// No credentials at all (401 Unauthorized).
    case anonymous
}

/// A simulated Kubernetes API server (core/v1 namespaces, pods, services, endpoints, configmaps)
/// over HTTPS that the real kubectl accepts. See docs in `Sources/GuildNetSimulators/KubeSim`.
///
/// Lifecycle: `init` (PKI + seed), then `run()` inside the owner's task group (serves until
/// cancelled or `stop()`), `endpoint()` waits until listening. `withRunning` does all three.
public actor KubeSim: SimulatedServer {
    public nonisolated let options: KubeSimOptions
    public nonisolated let pki: KubeSimPKI
    nonisolated let shared: KubeSimShared

    private var endpointState = EndpointWaiters<KubeSimEndpoint>()
    private var started = false
    private let stopSignal: AsyncStream<Void>
    private let stopContinuation: AsyncStream<Void>.Continuation

    public init(options: KubeSimOptions = KubeSimOptions()) async throws {
        self.options = options
        pki = try KubeSimPKI.generate()
        let store = KubeStore(historyLimit: options.historyLimit, defaultPodPhase: options.defaultPodPhase)
        shared = KubeSimShared(
            store: store, faults: KubeFaults(), connections: ConnectionRegistry(),
            dripDelay: LockedValue(.zero), options: options, tunnels: TunnelControl(), backends: PodBackends())
        (stopSignal, stopContinuation) = AsyncStream<Void>.makeStream()
        do {
            for namespace in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                _ = try await store.create(.namespaces, namespace: "", object: ["metadata": ["name": .string(namespace)]])
            }
            for index in 0..<max(0, options.seedPods) {
                _ = try await store.create(.pods, namespace: "default", object: Self.seedPod(index))
            }
        } catch {
            throw HostError(.internalError, "KubeSim seeding failed: \(error)")
        }
    }

    static func seedPod(_ index: Int) -> JSONValue {
        let name = String(format: "seed-pod-%05d", index)
        return [
            "metadata": ["name": .string(name), "namespace": "default", "labels": ["app": "kubesim-seed"]],
            "spec": [
                "nodeName": "kubesim-node",
                "containers": [["name": "app", "image": "registry.k8s.io/pause:3.10", "ports": [["containerPort": 80]]]],
            ],
            "status": ["phase": "Running", "podIP": .string("10.244.\(index / 250).\(index % 250 + 1)")],
        ]
    }

    /// Runs KubeSim, serves until `body` returns, then stops it. The server is a child task of this call.
    public static func withRunning<T: Sendable>(
        options: KubeSimOptions = KubeSimOptions(),
        _ body: @Sendable (KubeSim, KubeSimEndpoint) async throws -> T
    ) async throws -> T {
        try await KubeSim(options: options).serving(body)
    }

    // MARK: - Lifecycle

    /// Serves HTTPS until the calling task is cancelled or `stop()` is called. Call once.
    public func run() async throws {
        guard !started else { throw HostError(.invalidRequest, "KubeSim.run() called twice") }
        started = true
        let tls: TLSConfiguration
        do {
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(pki.serverCertificatePEM.utf8), format: .pem))],
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(pki.serverKeyPEM.utf8), format: .pem))
            )
            configuration.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(pki.caCertificatePEM.utf8), format: .pem)])
            configuration.certificateVerification = .optionalVerification
            configuration.applicationProtocols = ["http/1.1"]
            // Go's API server sends close_notify and closes without waiting for the peer's. NIOSSL
            // waits (5 s by default), and a connection the sim closes while nobody reads it (an
            // ended or cut tunnel) would hold `stop()` that long.
            configuration.shutdownTimeout = .milliseconds(200)
            tls = configuration
        } catch {
            fail(HostError(.internalError, "KubeSim TLS setup failed: \(error)"))
            throw HostError(.internalError, "KubeSim TLS setup failed: \(error)")
        }
        let host = options.host
        let shared = self.shared
        let admission = PortForwardAdmission(options: options, phases: shared.store.podPhases, control: shared.tunnels)
        let server = HTTPServerBuilder { responder in
            KubeSimHTTPChannel(responder: responder, admission: admission, backends: shared.backends)
        }
        let replicaSet = options.simulatedPods > 0 ? SimReplicaSet(store: shared.store, backends: shared.backends, replicas: options.simulatedPods) : nil
        let podChanges = await shared.store.podChanges()
        do {
            try await replicaSet?.start()
        } catch {
            await shared.store.finishPodChanges()
            await shared.backends.stopAll()
            fail(error)
            throw error
        }
        let app = Application(
            responder: KubeSimResponder(shared: shared),
            server: try .tls(server, tlsConfiguration: tls),
            configuration: ApplicationConfiguration(address: .hostname(host, port: options.port), serverName: nil),
            onServerRunning: { [weak self] channel in
                await self?.didBind(KubeSimEndpoint(host: host, port: channel.localAddress?.port ?? 0))
            },
            logger: options.logger
        )
        let stopSignal = self.stopSignal
        defer { shared.tunnels.release() }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                let services = ServiceGroup(configuration: .init(services: [app], logger: options.logger))
                group.addTask { try await services.run() }
                if let replicaSet {
                    group.addTask { await replicaSet.run(changes: podChanges) }
                }
                group.addTask {
                    // Ends on stop() or when the group is cancelled; either way drop every connection
                    // (open watches would otherwise hold the server's graceful shutdown), then shut down.
                    for await _ in stopSignal { break }
                    _ = await shared.store.cutAllWatches()
                    await shared.faults.release()
                    shared.tunnels.release()
                    shared.connections.closeAll()
                    _ = shared.tunnels.cutAll()
                    await shared.store.finishPodChanges()
                    await shared.backends.stopAll()
                    await services.triggerGracefulShutdown()
                }
                // Both tasks end on stop(): the server after its graceful shutdown. Should the
                // server end first (it failed), release the other task.
                try await group.next()
                stopContinuation.finish()
                try await group.waitForAll()
            }
        } catch {
            await shared.store.finishPodChanges()
            await shared.backends.stopAll()
            fail(error)
            throw error
        }
        await shared.backends.stopAll()
        fail(HostError(.internalError, "KubeSim stopped"))
    }

    private func didBind(_ endpoint: KubeSimEndpoint) {
        endpointState.bind(endpoint)
    }

    private func fail(_ error: any Error) {
        endpointState.fail(error)
    }

    /// The listening address; waits until `run()` has bound its socket.
    public func endpoint() async throws -> KubeSimEndpoint {
        if let bound = endpointState.bound { return bound }
        if let failure = endpointState.failure { throw failure }
        return try await withCheckedThrowingContinuation { endpointState.add($0) }
    }

    /// Makes `run()` return: open watches are cut and connections closed.
    public func stop() {
        stopContinuation.finish()
    }

    // MARK: - Kubeconfig

    /// A kubeconfig (YAML) for this sim with the given credentials.
    public nonisolated func kubeconfig(endpoint: KubeSimEndpoint, user: KubeSimUser = .token, namespace: String? = nil) -> String {
        func quoted(_ text: String) -> String { JSONValue.string(text).jsonString }
        func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        var userLines: [String] = []
        switch user {
        case .clientCertificate:
            userLines = [
                "    client-certificate-data: \(base64(pki.clientCertificatePEM))",
                "    client-key-data: \(base64(pki.clientKeyPEM))",
            ]
        case .foreignClientCertificate:
            userLines = [
                "    client-certificate-data: \(base64(pki.foreignClientCertificatePEM))",
                "    client-key-data: \(base64(pki.foreignClientKeyPEM))",
            ]
        case .token:
            userLines = ["    token: \(quoted(options.token))"]
        case .wrongToken:
            userLines = ["    token: \(quoted("wrong-" + options.token))"]
        case .forbiddenToken:
            userLines = ["    token: \(quoted(options.forbiddenToken ?? "kubesim-forbidden-token"))"]
        case .anonymous:
            userLines = []
        }
        var lines = [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            "- name: kubesim",
            "  cluster:",
            "    server: \(quoted(endpoint.url))",
            "    certificate-authority-data: \(base64(pki.caCertificatePEM))",
            "users:",
            "- name: kubesim-user",
        ]
        lines.append(userLines.isEmpty ? "  user: {}" : "  user:")
        lines.append(contentsOf: userLines)
        lines += [
            "contexts:",
            "- name: kubesim",
            "  context:",
            "    cluster: kubesim",
            "    user: kubesim-user",
        ]
        if let namespace { lines.append("    namespace: \(quoted(namespace))") }
        lines += ["current-context: kubesim", "preferences: {}", ""]
        return lines.joined(separator: "\n")
    }

    /// Writes `kubeconfig(...)` to `path` with mode 0600.
    public nonisolated func writeKubeconfig(to path: String, endpoint: KubeSimEndpoint, user: KubeSimUser = .token) throws {
        let text = kubeconfig(endpoint: endpoint, user: user)
        let created = FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
        guard created else { throw HostError(.io, "cannot write kubeconfig to \(path)") }
        do {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        } catch {
            throw HostError(.io, "cannot set mode 0600 on \(path): \(error)")
        }
    }

    // MARK: - State (the same operations the HTTP API offers; errors are KubeStatusError)

    public var resourceVersion: Int64 { get async { await shared.store.currentResourceVersion } }

    public func create(_ resource: KubeResource, namespace: String = "default", _ object: JSONValue) async throws -> JSONValue {
        try await shared.store.create(resource, namespace: namespace, object: object)
    }

    public func get(_ resource: KubeResource, namespace: String = "default", name: String) async throws -> JSONValue {
        try await shared.store.get(resource, namespace: namespace, name: name)
    }

    /// All objects of `resource` (in `namespace`, or all namespaces when nil) as a List object, at
    /// the latest resourceVersion or, with `resourceVersion`, from storage exactly at that RV.
    public func list(_ resource: KubeResource, namespace: String? = nil, resourceVersion: Int64? = nil) async throws -> JSONValue {
        try await shared.store.list(
            resource, namespace: namespace, limit: nil, continueToken: nil,
            labels: KubeSelector(nil, isField: false), fields: KubeSelector(nil, isField: true),
            resourceVersion: resourceVersion.map { String($0) }, match: resourceVersion == nil ? nil : "Exact")
    }

    public func update(_ resource: KubeResource, namespace: String = "default", name: String, _ object: JSONValue) async throws -> JSONValue {
        try await shared.store.update(resource, namespace: namespace, name: name, object: object)
    }

    public func patch(_ resource: KubeResource, namespace: String = "default", name: String, _ patch: JSONValue) async throws -> JSONValue {
        try await shared.store.patch(resource, namespace: namespace, name: name, patch: patch)
    }

    @discardableResult
    public func delete(_ resource: KubeResource, namespace: String = "default", name: String) async throws -> JSONValue {
        try await shared.store.delete(resource, namespace: namespace, name: name)
    }

    // MARK: - Fault injection

    /// Every request (new or already parsed) waits before being answered until `releaseReplies()`.
    public func stallReplies() async { await shared.faults.stall() }
    public func releaseReplies() async { await shared.faults.release() }
    /// Requests currently held by `stallReplies()`.
    public var stalledRequestCount: Int { get async { await shared.faults.stalledCount } }

    /// Cuts every open watch stream abruptly (the connection is closed without the final chunk).
    @discardableResult
    public func cutWatchStreams() async -> Int { await shared.store.cutAllWatches() }

    /// The next `count` requests get `status` (500, 503 or 429) with a Status body, and a
    /// `Retry-After` header when `retryAfterSeconds` is set.
    public func failNextRequests(_ count: Int, status: Int = 500, retryAfterSeconds: Int? = nil) async {
        await shared.faults.failNext(count, code: status, retryAfterSeconds: retryAfterSeconds)
    }

    /// Delay before each watch event is written (zero turns it off).
    public func setDripDelay(_ delay: Duration) { shared.dripDelay.withLock { $0 = delay } }

    /// Drops the event history now: watches and continue tokens from older resourceVersions get 410.
    public func compactHistory() async { await shared.store.compactNow() }

    /// Simulates an API server restart (kube-apiserver over etcd, watch cache on): every connection
    /// is dropped (watches and port-forward tunnels cut) and new ones are served at once; storage keeps its state and history,
    /// but the watch cache is rebuilt at the current resourceVersion. Afterwards a list at an older
    /// RV is still answered (from storage at that RV when paged, else from the cache at its newer
    /// RV), while a watch from before the restart gets `410 Expired: too old resource version: X (Y)`.
    public func restart() async {
        _ = await shared.store.restartWatchCache()
        shared.connections.closeAll()
        _ = shared.tunnels.cutAll()
    }

    public func simulateRestart() async { await restart() }

    public var openConnectionCount: Int { shared.connections.count }
    /// HTTP requests received since start (a client's retry after a fault shows here).
    public var requestCount: Int { get async { await shared.faults.received } }
    public var openWatchCount: Int { get async { await shared.store.openWatchCount } }

    // MARK: - Port-forward

    /// The loopback port serving `containerPort` of a simulated pod (nil if it has none): a peer
    /// that bypasses the API server, for benchmarks.
    public func backendPort(namespace: String = "default", pod: String, containerPort: Int) async -> Int? {
        shared.backends.port(namespace: namespace, name: pod, containerPort: containerPort)
    }

    /// Port-forward tunnels open now (a stream pair over SPDY, or a channel-protocol WebSocket).
    public var openTunnelCount: Int { get async { shared.tunnels.openTunnels } }

    /// Upgraded port-forward connections open now.
    public var openPortForwardConnectionCount: Int { get async { shared.tunnels.openConnections } }

    /// Listening loopback servers behind simulated pods.
    public var backendListenerCount: Int { get async { shared.backends.listenerCount } }

    /// Tunnels stop relaying bytes in both directions (new tunnels too) until `releaseTunnels()`.
    public func stallTunnels() async { shared.tunnels.stall() }

    public func releaseTunnels() async { shared.tunnels.release() }

    /// Closes every open port-forward connection; returns how many.
    @discardableResult
    public func cutTunnels() async -> Int { shared.tunnels.cutAll() }

    /// While set, port-forward upgrade attempts get a non-101 answer (a `500` Status).
    public func refusePortForwardUpgrades(_ refuse: Bool) async { shared.tunnels.refusesUpgrades = refuse }
}
