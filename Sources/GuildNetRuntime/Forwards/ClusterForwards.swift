import GuildNetCore
import GuildNetKube
import GuildNetMetrics
import GuildNetSettings
import Logging

/// The cluster's port-forward manager (child id `forwards`): every forward of the cluster,
/// keyed by namespace + pod-or-service + remote port + local port (``ForwardSpec/id``), each
/// reaching its pods only through the cluster's own ``KubeClient``.
///
/// ```
/// forwards  ClusterForwards
///  └─ forward  PortForwarder per ForwardSpec, a child task of run()
///      ├─ listener     127.0.0.1:<local port>, one child task per accepted connection (its own tunnel)
///      └─ health       probe through a tunnel every forward.health_interval_ms; re-resolve, back off, give up
/// ```
///
/// Asking for an existing forward again returns it (never a duplicate, never an overwrite); a
/// local port taken anywhere on the host is `forward_port_in_use`. `forward.stop`, unregistering
/// the cluster and host shutdown close every listener, tunnel and accepted connection.
public actor ClusterForwards: ClusterChild {
    public nonisolated let childID = "forwards"
    private let kube: ClusterKube
    private let settings: ClusterSettings
    private let metrics: ClusterMetrics
    private let logger: Logger

    private enum State {
        case idle
        /// Forwards run as child tasks of ``run()`` through `spawner`.
        case running(TaskSpawner)
        case stopped
    }

    private var state = State.idle
    private var forwards: [String: PortForwarder] = [:]
    /// Callers waiting for a forward that another call is opening (same id).
    private var opening: [String: [CheckedContinuation<Void, Never>]] = [:]
    /// Counters of forwards already removed, so the metric counters never go down.
    private var retired = PortForwarder.Traffic()
    private var retiredRestarts = 0
    private var failedForwards = 0
    private var published = Published()

    init(kube: ClusterKube, settings: ClusterSettings, metrics: ClusterMetrics, logger: Logger) {
        self.kube = kube
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: ClusterChild

    public func start() async throws {
        if case .running = state { return }
        state = .running(TaskSpawner())
    }

    public func run() async throws {
        guard case .running(let spawner) = state else { return try await waitForCancellation() }
        spawner.spawn { await self.sampleMetrics() }
        await spawner.run()
        try Task.checkCancellation()
    }

    /// Stops every forward and waits until each closed its listener and connections. Idempotent.
    public func stop() async {
        let previous = state
        state = .stopped
        if case .running(let spawner) = previous { spawner.finish() }
        let all = forwards.values
        forwards.removeAll()
        for forwarder in all { await forwarder.shutdown() }
        for waiters in opening.values { for waiter in waiters { waiter.resume() } }
        opening.removeAll()
    }

    // MARK: Ops

    /// Starts the forward `spec`, or returns the one already running for it.
    ///
    /// - Throws: `cluster_stopping`, `kubeconfig_invalid`, `invalid_field`, `k8s_not_found` (no
    ///   such pod or service), `pod_not_running`, `service_no_ready_pod`, `forward_port_in_use`.
    public func startForward(_ spec: ForwardSpec) async throws -> ForwardStatus {
        guard PortForwardProtocol.portRange.contains(spec.remotePort) else {
            throw HostError(.invalidField, "field \"remote_port\" must be 1...65535, got \(spec.remotePort)")
        }
        guard (0...65_535).contains(spec.localPort) else {
            throw HostError(.invalidField, "field \"local_port\" must be 0...65535 (0: any free port), got \(spec.localPort)")
        }
        let id = spec.id
        while opening[id] != nil {
            await withCheckedContinuation { opening[id, default: []].append($0) }
        }
        let spawner = try requireSpawner()
        if let existing = forwards[id] {
            let status = await existing.status()
            if status.state != .failed && status.state != .stopped { return status }
            await remove(id)
        }
        opening[id] = []
        defer {
            for waiter in opening.removeValue(forKey: id) ?? [] { waiter.resume() }
        }
        let client = try await kube.requireClient()
        let options = await forwardOptions()
        let forwarder = try await PortForwarder.open(
            spec: spec, client: client, resolver: ForwardResolver(client: client, kube: kube), options: options, logger: logger)
        guard case .running = state, spawner.spawn({ await forwarder.run() }) else {
            await forwarder.shutdown()
            throw HostError(.clusterStopping, "the cluster is stopping")
        }
        forwards[id] = forwarder
        logger.info(
            "port-forward started", metadata: ["event": "forward_started", "forward": .string(id), "local_port": .stringConvertible(forwarder.localPort)])
        return await forwarder.status()
    }

    /// Every forward of the cluster, by id.
    public func list() async -> [ForwardStatus] {
        var statuses: [ForwardStatus] = []
        for id in forwards.keys.sorted() {
            if let forwarder = forwards[id] { statuses.append(await forwarder.status()) }
        }
        return statuses
    }

    /// Stops the forward `id` and waits until its listener and connections are closed.
    ///
    /// - Throws: `forward_not_found`.
    public func stopForward(_ id: String) async throws -> ForwardStatus {
        guard let forwarder = forwards[id] else {
            let known = forwards.keys.sorted()
            let hint = known.isEmpty ? "the cluster has no forwards" : "forwards: \(known.joined(separator: ", "))"
            throw HostError(.forwardNotFound, "no forward \(String(reflecting: id)) in this cluster (\(hint))")
        }
        await remove(id)
        logger.info("port-forward stopped", metadata: ["event": "forward_stopped", "forward": .string(id)])
        var status = await forwarder.status()
        if status.state != .failed { status.state = .stopped }
        return status
    }

    private func remove(_ id: String) async {
        guard let forwarder = forwards.removeValue(forKey: id) else { return }
        await forwarder.shutdown()
        let status = await forwarder.status()
        retired.accumulate(forwarder.trafficCounts)
        retiredRestarts += status.restarts
        if status.state == .failed { failedForwards += 1 }
    }

    private func requireSpawner() throws -> TaskSpawner {
        switch state {
        case .running(let spawner): return spawner
        case .idle: throw HostError(.clusterNotReady, "the cluster's forward manager is not started yet", transient: true)
        case .stopped: throw HostError(.clusterStopping, "the cluster is stopping")
        }
    }

    private func forwardOptions() async -> ForwardOptions {
        let values = await settings.snapshot()
        var options = ForwardOptions()
        options.healthInterval = .milliseconds(values[.forwardHealthIntervalMilliseconds])
        options.probeTimeout = min(.seconds(5), max(.milliseconds(500), options.healthInterval))
        options.maxRestarts = values[.forwardMaxRestarts]
        return options
    }

    // MARK: Status and metrics

    /// Forwards counted by state (`cluster.status`).
    public func details() async -> [String: JSONValue] {
        var byState: [String: JSONValue] = [:]
        for state in [ForwardState.starting, .active, .restarting, .failed, .stopped] { byState[state.rawValue] = 0 }
        for forwarder in forwards.values {
            let state = await forwarder.status().state
            byState[state.rawValue] = .int((byState[state.rawValue]?.intValue ?? 0) + 1)
        }
        return ["forwards": .int(Int64(forwards.count)), "by_state": .object(byState)]
    }

    static let activeGauge = "hostapp_cluster_port_forwards_active"
    static let connectionsCounter = "hostapp_cluster_port_forward_connections_total"
    static let connectionFailuresCounter = "hostapp_cluster_port_forward_connection_failures_total"
    static let bytesCounter = "hostapp_cluster_port_forward_bytes_total"
    static let restartsCounter = "hostapp_cluster_port_forward_restarts_total"
    static let failuresCounter = "hostapp_cluster_port_forward_failures_total"

    /// What the counters already published, so each sample adds only the difference.
    private struct Published {
        var connections = 0
        var connectionFailures = 0
        var bytesIn = 0
        var bytesOut = 0
        var restarts = 0
        var failures = 0
    }

    private func sampleMetrics() async {
        await sampleEvery(metricsSamplingInterval) { await publishMetrics() }
    }

    private func publishMetrics() async {
        guard case .running = state else { return }
        var totals = retired
        var restarts = retiredRestarts
        var failures = failedForwards
        var active = 0
        for forwarder in forwards.values {
            let status = await forwarder.status()
            totals.accumulate(forwarder.trafficCounts)
            restarts += status.restarts
            if status.state == .active { active += 1 }
            if status.state == .failed { failures += 1 }
        }
        guard case .running = state else { return }
        metrics.gauge(Self.activeGauge, help: "Port-forwards of the cluster that are active.", labels: []).set(Int64(active))
        func add(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Int, _ published: inout Int) {
            if value > published { metrics.counter(name, help: help, labels: labels).increment(by: Int64(value - published)) }
            published = max(published, value)
        }
        add(Self.connectionsCounter, "Local connections accepted by the cluster's port-forwards.", [], totals.connectionsTotal, &published.connections)
        add(
            Self.connectionFailuresCounter, "Port-forward connections that failed (tunnel refused or broken).", [], totals.connectionFailures,
            &published.connectionFailures)
        add(Self.bytesCounter, "Bytes carried by the cluster's port-forwards.", [("direction", "in")], totals.bytesIn, &published.bytesIn)
        add(Self.bytesCounter, "Bytes carried by the cluster's port-forwards.", [("direction", "out")], totals.bytesOut, &published.bytesOut)
        add(Self.restartsCounter, "Port-forward restarts (target re-resolved after a failed check or a deleted pod).", [], restarts, &published.restarts)
        add(Self.failuresCounter, "Port-forwards that gave up (failed state).", [], failures, &published.failures)
    }
}
