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
///  ├─ client      KubeClient (own connection pool, QPS/burst limiter, credentials), built for the
///  │              route the cluster's routes chose (useRoute; the kubeconfig as is until then)
///  └─ informers   KubeInformer per (resource, namespace), each a child task of run()
/// ```
///
/// `start()` only builds the client (from the configuration resolved at registration, or the
/// stored kubeconfig); it never waits for the API server, so
/// an unreachable or hung server cannot delay the cluster's readiness. Informers start on first use
/// (`k8s.watch`, `k8s.list`) and live until the cluster stops; `stop()` ends every subscriber stream
/// and closes every connection.
public actor ClusterKube: ClusterChild {
    public nonisolated let childID = "kube"
    /// The configuration resolved at registration, if any: used as is, never parsed again.
    private let registeredConfig: KubeClusterConfig?
    /// Reads the stored kubeconfig text (the cluster's file, or the legacy DB) when there is no
    /// registered configuration (a cluster restored by a restarted daemon, the legacy layout).
    private let loadKubeconfig: @Sendable () async throws -> String?
    private let settings: ClusterSettings
    private let metrics: ClusterMetrics
    private let logger: Logger

    /// The child's lifecycle; each state holds exactly what it needs.
    private enum State {
        /// Not started yet, or between a failed start and the next.
        case idle
        /// Started without a kubeconfig: `k8s.*` ops fail with `kubeconfig_invalid`.
        case unconfigured
        /// Started with a client; informers run as child tasks of ``run()`` through `spawner`.
        case running(Running)
        /// ``stop()`` ran: everything is closed.
        case stopped
    }

    private struct Running {
        var client: KubeClient
        /// The kubeconfig's configuration (the direct route's), whatever route the client uses.
        let config: KubeClusterConfig
        /// What ``client`` was built from (the route's configuration, or ``config``).
        var clientConfig: KubeClusterConfig
        let options: KubeClientOptions
        let spawner: TaskSpawner
        var informers: [InformerID: KubeInformer] = [:]
    }

    private var state = State.idle
    /// The route the client goes through and its configuration, set by the cluster's routes
    /// (``useRoute(_:config:)``); kept across restarts of this child. `nil`: the kubeconfig as is.
    private var route: (name: String, config: KubeClusterConfig)?

    /// Identifies one informer of the cluster.
    struct InformerID: Hashable {
        var resource: KubeAPIResource
        var namespace: String?
    }

    init(
        kubeconfig: KubeClusterConfig?, loadKubeconfig: @escaping @Sendable () async throws -> String?, settings: ClusterSettings,
        metrics: ClusterMetrics, logger: Logger
    ) {
        self.registeredConfig = kubeconfig
        self.loadKubeconfig = loadKubeconfig
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: ClusterChild

    /// Builds the client from the registered configuration, or from the stored kubeconfig. A
    /// cluster registered without a kubeconfig has no client: its `k8s.*` ops fail with
    /// `kubeconfig_invalid` and the child stays running.
    public func start() async throws {
        // A restart after a failure begins from `idle` again; stop() moves to `stopped`, and every
        // step below re-checks the state after its suspensions.
        state = .idle
        let config: KubeClusterConfig
        if let registeredConfig {
            config = registeredConfig
        } else if let text = try await loadKubeconfig() {
            config = try ResolvedKubeconfig.parse(stored: text)
        } else {
            if case .idle = state { state = .unconfigured }
            return
        }
        let values = await settings.snapshot()
        var options = KubeClientOptions()
        options.qps = Double(values[.kubeQPS])
        options.burst = values[.kubeBurst]
        options.requestTimeout = .seconds(values[.kubeRequestTimeoutSeconds])
        let client = try KubeClient.make(config: route?.config ?? config, options: options, logger: logger)
        guard case .idle = state else {
            // stop() ran while the settings were read: nothing may stay open.
            try? await client.shutdown()
            return
        }
        state = .running(Running(client: client, config: config, clientConfig: route?.config ?? config, options: options, spawner: TaskSpawner()))
    }

    /// Runs every informer as a child task, and the metrics sampler, until cancelled.
    public func run() async throws {
        guard case .running(let running) = state else { return try await waitForCancellation() }
        running.spawner.spawn { await self.sampleMetrics() }
        await running.spawner.run()
        try Task.checkCancellation()
    }

    /// Ends every informer's subscribers and closes the client's connections. Idempotent.
    public func stop() async {
        let previous = state
        state = .stopped
        publishedRequests = 0
        publishedFailures = 0
        publishedWatchEvents = 0
        guard case .running(let running) = previous else { return }
        running.spawner.finish()
        let reason = HostError(.clusterStopping, "the cluster's Kubernetes client stopped")
        for informer in running.informers.values { await informer.shutdown(reason: reason) }
        do {
            try await running.client.shutdown()
        } catch {
            logger.debug("Kubernetes client shutdown: \(error)")
        }
    }

    // MARK: Metrics

    static let requestsCounter = "hostapp_cluster_k8s_api_requests_total"
    static let errorsCounter = "hostapp_cluster_k8s_api_errors_total"
    static let informersGauge = "hostapp_cluster_k8s_informers"
    static let watchesGauge = "hostapp_cluster_k8s_watches_open"
    static let syncedGauge = "hostapp_cluster_k8s_informers_synced"
    static let watchEventsCounter = "hostapp_cluster_k8s_watch_events_total"
    private var publishedRequests = 0
    private var publishedFailures = 0
    /// The informers' applied-event total last published (informers come and go: only growth is added).
    private var publishedWatchEvents = 0

    /// Copies the client's counters into `hostapp_cluster_k8s_*` every ``metricsSamplingInterval``.
    private func sampleMetrics() async {
        await sampleEvery(metricsSamplingInterval) { await publishMetrics() }
    }

    private func publishMetrics() async {
        guard case .running(let running) = state else { return }
        var synced = 0
        var watchEvents = 0
        for informer in running.informers.values {
            let status = await informer.status()
            if status.synced { synced += 1 }
            watchEvents += status.eventsApplied
        }
        // Re-read after the suspensions: stop() may have run meanwhile.
        guard case .running = state else { return }
        let events = metrics.counter(Self.watchEventsCounter, help: "Watch events the cluster's informers applied (sampled).", labels: [])
        if watchEvents > publishedWatchEvents { events.increment(by: Int64(watchEvents - publishedWatchEvents)) }
        publishedWatchEvents = watchEvents
        metrics.gauge(Self.syncedGauge, help: "Informers of the cluster whose cache has synced.", labels: []).set(Int64(synced))
        let stats = running.client.stats
        let requests = metrics.counter(Self.requestsCounter, help: "Kubernetes API requests sent by the cluster's client.", labels: [])
        let errors = metrics.counter(Self.errorsCounter, help: "Kubernetes API requests of the cluster that failed.", labels: [])
        if stats.requests > publishedRequests { requests.increment(by: Int64(stats.requests - publishedRequests)) }
        if stats.failures > publishedFailures { errors.increment(by: Int64(stats.failures - publishedFailures)) }
        publishedRequests = max(publishedRequests, stats.requests)
        publishedFailures = max(publishedFailures, stats.failures)
        metrics.gauge(Self.informersGauge, help: "Informers running for the cluster.", labels: []).set(Int64(running.informers.count))
        metrics.gauge(Self.watchesGauge, help: "Watch streams open to the cluster's API server.", labels: []).set(Int64(stats.openWatches))
    }

    /// Server, context, client counters and every informer's sync state (never credentials).
    public func details() async -> [String: JSONValue] {
        guard case .running(let running) = state else { return ["configured": false] }
        let stats = running.client.stats
        var details: [String: JSONValue] = [
            "configured": true,
            "server": .string(running.client.server),
            "route": .string(route?.name ?? RouteKind.direct.rawValue),
            "context": .string(running.config.contextName),
            "requests": .int(Int64(stats.requests)),
            "failures": .int(Int64(stats.failures)),
            "retries": .int(Int64(stats.retries)),
            "throttled_waits": .int(Int64(stats.throttledWaits)),
            "open_watches": .int(Int64(stats.openWatches)),
        ]
        if let error = stats.lastError {
            details["last_api_error"] = error.json
        }
        var list: [JSONValue] = []
        for key in running.informers.keys.sorted(by: { "\($0.resource)/\($0.namespace ?? "")" < "\($1.resource)/\($1.namespace ?? "")" }) {
            if let informer = running.informers[key] { list.append(await informer.status().json) }
        }
        details["informers"] = .array(list)
        return details
    }

    // MARK: Routes

    /// Makes the client go through `config` (the chosen route named `name`): a new client is built
    /// with the same options, informers of the old one end (their subscribers get a final event
    /// with code `route_changed` and may subscribe again) and the old client is shut down. Forwards
    /// and later requests use the new client. A no-op when the route and its configuration are
    /// unchanged (the first choice of `direct` keeps the client built at start); before the child
    /// runs, the route is kept for its start.
    /// - Throws: `kubeconfig_invalid` when the route's configuration cannot make a client.
    public func useRoute(_ name: String, config: KubeClusterConfig) async throws {
        guard case .running(var running) = state else {
            route = (name, config)
            return
        }
        guard running.clientConfig != config else {
            route = (name, config)
            return
        }
        let client = try KubeClient.make(config: config, options: running.options, logger: logger)
        let previous = running
        running.client = client
        running.clientConfig = config
        running.informers = [:]
        route = (name, config)
        state = .running(running)
        publishedRequests = 0
        publishedFailures = 0
        let reason = HostError(.routeChanged, "the cluster's API route changed to \(name); subscribe again")
        for informer in previous.informers.values { await informer.shutdown(reason: reason) }
        do {
            try await previous.client.shutdown()
        } catch {
            logger.debug("Kubernetes client shutdown after a route change: \(error)")
        }
    }

    // MARK: Use

    /// The cluster's client.
    /// - Throws: `kubeconfig_invalid` when the cluster has no kubeconfig, `cluster_stopping` while
    ///   stopping, `cluster_not_ready` before the child started.
    public func requireClient() throws -> KubeClient {
        try requireRunning().client
    }

    private func requireRunning() throws -> Running {
        switch state {
        case .running(let running):
            return running
        case .unconfigured:
            throw HostError(.kubeconfigInvalid, "the cluster was registered without a kubeconfig; register it again with \"kubeconfig\"")
        case .idle:
            throw HostError(.clusterNotReady, "the cluster's Kubernetes client is not started yet", transient: true)
        case .stopped:
            throw HostError(.clusterStopping, "the cluster is stopping")
        }
    }

    /// The informer of `resource` in `namespace` (nil: all namespaces), started on first use.
    public func informer(_ resource: KubeAPIResource, namespace: String?) throws -> KubeInformer {
        var running = try requireRunning()
        let key = InformerID(resource: resource, namespace: resource.namespaced ? namespace : nil)
        if let existing = running.informers[key] { return existing }
        let informer = KubeInformer(client: running.client, resource: resource, namespace: key.namespace, logger: logger)
        guard running.spawner.spawn({ await informer.run() }) else {
            throw HostError(.clusterStopping, "the cluster is stopping")
        }
        running.informers[key] = informer
        state = .running(running)
        return informer
    }

    /// The informer of `resource` in `namespace` if one runs and has synced.
    public func syncedInformer(_ resource: KubeAPIResource, namespace: String?) async -> KubeInformer? {
        guard case .running(let running) = state else { return nil }
        let key = InformerID(resource: resource, namespace: resource.namespaced ? namespace : nil)
        guard let informer = running.informers[key], await informer.status().synced else { return nil }
        return informer
    }
}
