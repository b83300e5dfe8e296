import Foundation
import GuildNetCore
import GuildNetKube
import GuildNetMetrics
import GuildNetSettings
import Logging

/// The cluster's Kubernetes subsystem (child id `kube`): its own ``KubeClient``, built from the
/// cluster's resolved kubeconfig by the one factory, and its informers.
///
/// ```
/// kube  ClusterKube
///  ├─ client      KubeClient (own connection pool, QPS/burst limiter, credentials)
///  └─ informers   KubeInformer per (resource, namespace), each a child task of run()
/// ```
///
/// `start()` only reads the kubeconfig and builds the client; it never waits for the API server, so
/// an unreachable or hung server cannot delay the cluster's readiness. Informers start on first use
/// (`k8s.watch`, `k8s.list`) and live until the cluster stops; `stop()` ends every subscriber stream
/// and closes every connection.
public actor ClusterKube: ClusterChild {
    public nonisolated let childID = "kube"
    /// Reads the resolved kubeconfig text (the cluster's file, or the legacy DB).
    private let loadKubeconfig: @Sendable () throws -> String?
    private let settings: ClusterSettings
    private let metrics: ClusterMetrics
    private let logger: Logger

    private var client: KubeClient?
    private var config: KubeClusterConfig?
    private var informers: [InformerID: KubeInformer] = [:]
    private var starts: AsyncStream<KubeInformer>.Continuation?
    private var startStream: AsyncStream<KubeInformer>?
    private var stopping = false

    /// Identifies one informer of the cluster.
    struct InformerID: Hashable {
        var resource: KubeAPIResource
        var namespace: String?
    }

    init(
        loadKubeconfig: @escaping @Sendable () throws -> String?, settings: ClusterSettings, metrics: ClusterMetrics,
        logger: Logger
    ) {
        self.loadKubeconfig = loadKubeconfig
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    /// Whether `text` is a kubeconfig (how the legacy layout tells plaintext from ciphertext).
    static func isKubeconfig(_ text: String) -> Bool { KubeconfigLoader.isKubeconfig(text) }

    // MARK: ClusterChild

    /// Loads the kubeconfig and builds the client. A cluster registered without a kubeconfig has no
    /// client: its `k8s.*` ops fail with `kubeconfig_invalid` and the child stays running.
    public func start() async throws {
        stopping = false
        let (stream, continuation) = AsyncStream<KubeInformer>.makeStream()
        startStream = stream
        starts = continuation
        guard let text = try loadKubeconfig() else { return }
        let document: KubeconfigDocument
        do {
            document = try KubeconfigLoader.parse(Data(text.utf8), source: "the cluster's kubeconfig")
        } catch {
            throw HostError.wrapping(error, as: .kubeconfigInvalid)
        }
        let resolved = try KubeClusterConfig.resolve(document, context: nil)
        var options = KubeClientOptions()
        if case .int(let qps)? = await settings.value("kube.qps") { options.qps = Double(qps) }
        if case .int(let burst)? = await settings.value("kube.burst") { options.burst = Int(burst) }
        if case .int(let seconds)? = await settings.value("kube.request_timeout_seconds") { options.requestTimeout = .seconds(seconds) }
        client = try KubeClientFactory.make(config: resolved, options: options, logger: logger)
        config = resolved
    }

    /// Runs every informer as a child task, and the metrics sampler, until cancelled.
    public func run() async throws {
        guard let stream = startStream else { return try await waitForCancellation() }
        await withDiscardingTaskGroup { group in
            // Clusters without a kubeconfig have no client and nothing to sample.
            if client != nil { group.addTask { await self.sampleMetrics() } }
            for await informer in stream {
                group.addTask { await informer.run() }
            }
        }
        try Task.checkCancellation()
    }

    private func shutdownClient() async {
        guard let client else { return }
        do {
            try await client.shutdown()
        } catch {
            logger.debug("Kubernetes client shutdown: \(error)")
        }
    }

    // MARK: Metrics

    static let requestsCounter = "hostapp_cluster_k8s_api_requests_total"
    static let errorsCounter = "hostapp_cluster_k8s_api_errors_total"
    static let informersGauge = "hostapp_cluster_k8s_informers"
    static let watchesGauge = "hostapp_cluster_k8s_watches_open"
    private var publishedRequests = 0
    private var publishedFailures = 0

    /// Copies the client's counters into `hostapp_cluster_k8s_*` every ``metricsSamplingInterval``.
    private func sampleMetrics() async {
        await sampleEvery(metricsSamplingInterval) { publishMetrics() }
    }

    private func publishMetrics() {
        let stats = client?.stats ?? KubeClientStats()
        let requests = metrics.counter(Self.requestsCounter, help: "Kubernetes API requests sent by the cluster's client.", labels: [])
        let errors = metrics.counter(Self.errorsCounter, help: "Kubernetes API requests of the cluster that failed.", labels: [])
        if stats.requests > publishedRequests { requests.increment(by: Int64(stats.requests - publishedRequests)) }
        if stats.failures > publishedFailures { errors.increment(by: Int64(stats.failures - publishedFailures)) }
        publishedRequests = max(publishedRequests, stats.requests)
        publishedFailures = max(publishedFailures, stats.failures)
        metrics.gauge(Self.informersGauge, help: "Informers running for the cluster.", labels: []).set(Int64(informers.count))
        metrics.gauge(Self.watchesGauge, help: "Watch streams open to the cluster's API server.", labels: []).set(Int64(stats.openWatches))
    }

    /// Ends every informer's subscribers and closes the client's connections. Idempotent.
    public func stop() async {
        stopping = true
        starts?.finish()
        starts = nil
        startStream = nil
        let informers = Array(self.informers.values)
        self.informers.removeAll()
        let reason = HostError(.clusterStopping, "the cluster's Kubernetes client stopped")
        for informer in informers { await informer.shutdown(reason: reason) }
        await shutdownClient()
        client = nil
        config = nil
        publishedRequests = 0
        publishedFailures = 0
    }

    /// Server, context, client counters and every informer's sync state (never credentials).
    public func details() async -> [String: JSONValue] {
        guard let client, let config else { return ["configured": false] }
        let stats = client.stats
        var details: [String: JSONValue] = [
            "configured": true,
            "server": .string(client.server),
            "context": .string(config.contextName),
            "requests": .int(Int64(stats.requests)),
            "failures": .int(Int64(stats.failures)),
            "retries": .int(Int64(stats.retries)),
            "throttled_waits": .int(Int64(stats.throttledWaits)),
            "open_watches": .int(Int64(stats.openWatches)),
        ]
        if let error = stats.lastError {
            details["last_api_error"] = ["code": .string(error.code.rawValue), "message": .string(error.message), "transient": .bool(error.transient)]
        }
        var list: [JSONValue] = []
        for key in informers.keys.sorted(by: { "\($0.resource)/\($0.namespace ?? "")" < "\($1.resource)/\($1.namespace ?? "")" }) {
            if let informer = informers[key] { list.append(await informer.status().json) }
        }
        details["informers"] = .array(list)
        return details
    }

    // MARK: Use

    /// The cluster's client.
    /// - Throws: `kubeconfig_invalid` when the cluster has no kubeconfig, `cluster_stopping` while stopping.
    public func requireClient() throws -> KubeClient {
        if stopping { throw HostError(.clusterStopping, "the cluster is stopping") }
        guard let client else {
            throw HostError(.kubeconfigInvalid, "the cluster was registered without a kubeconfig; register it again with \"kubeconfig\"")
        }
        return client
    }

    /// The informer of `resource` in `namespace` (nil: all namespaces), started on first use.
    public func informer(_ resource: KubeAPIResource, namespace: String?) throws -> KubeInformer {
        let client = try requireClient()
        let key = InformerID(resource: resource, namespace: resource.namespaced ? namespace : nil)
        if let existing = informers[key] { return existing }
        guard let starts else { throw HostError(.clusterStopping, "the cluster is stopping") }
        let informer = KubeInformer(client: client, resource: resource, namespace: key.namespace, logger: logger)
        informers[key] = informer
        starts.yield(informer)
        return informer
    }

    /// The informer of `resource` in `namespace` if one runs and has synced.
    public func syncedInformer(_ resource: KubeAPIResource, namespace: String?) async -> KubeInformer? {
        let key = InformerID(resource: resource, namespace: resource.namespaced ? namespace : nil)
        guard let informer = informers[key], await informer.status().synced else { return nil }
        return informer
    }

    /// How many informers run (for leak checks).
    public var informerCount: Int { informers.count }
}
