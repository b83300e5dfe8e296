import Foundation
import GuildNetCore
import GuildNetKube
import GuildNetMetrics
import GuildNetSettings
import GuildNetStateDirectory
import Logging

/// The cluster's API routes (child id `routes`): which way its Kubernetes client, informers and
/// forwards reach the API server, chosen for this cluster alone.
///
/// ```
/// routes  ClusterRoutes
///  ├─ evaluator      probes the routes (GET /version) every route.probe_interval_ms, and on route.probe
///  ├─ kubectl proxy  KubectlProxyProcess (child process, started only when the route is tried)
///  └─ socks5 relay   SOCKS5AuthRelay on 127.0.0.1 (only with route.socks5_username/password)
/// ```
///
/// With `route.strategy=auto` the first healthy route in the order direct → kubectl-proxy →
/// tailnet is used; a pinned strategy uses its route alone and reports it failed rather than
/// replacing it. Each decision is logged with `cluster_id`, an `event` (`route_selected`,
/// `route_fallback`, `route_failed`) and the reason, counted in `hostapp_cluster_route_*`, and
/// handed to ``ClusterKube/useRoute(_:config:)``. Nothing here is shared with another cluster: each
/// cluster has its own routes, its own kubectl process and its own decisions.
public actor ClusterRoutes: ClusterChild {
    public nonisolated let childID = "routes"
    private let registeredConfig: KubeClusterConfig?
    private let loadKubeconfig: @Sendable () async throws -> String?
    private let kube: ClusterKube
    private let settings: ClusterSettings
    private let metrics: ClusterMetrics
    private let logger: Logger
    /// The cluster's directory: kubectl's kubeconfig is written here (mode 0600) while it runs.
    private let directory: String

    private enum State {
        case idle
        /// Started without a kubeconfig: nothing to route.
        case unconfigured
        case running(Running)
        case stopped
    }

    private struct Running {
        let base: KubeClusterConfig
        let spawner: TaskSpawner
        var kubectl: KubectlProxyProcess?
        var relay: SOCKS5AuthRelay?
    }

    private var state = State.idle
    private var health: [RouteKind: RouteHealth] = [:]
    private var decision: RouteDecision?
    private var lastSwitch: RouteDecision?
    private var strategy = RouteStrategy.auto
    private var evaluations = 0
    private var evaluating = false
    private var evaluationWaiters: [CheckedContinuation<Void, Never>] = []
    /// Consecutive evaluations that found no healthy route (they are retried sooner than the interval).
    private var failedEvaluations = 0
    /// Asks the evaluation loop for an evaluation now (a restarted kubectl serves on a new port).
    private let wakeups: AsyncStream<Void>
    private let wakeupContinuation: AsyncStream<Void>.Continuation

    init(
        kubeconfig: KubeClusterConfig?, loadKubeconfig: @escaping @Sendable () async throws -> String?, kube: ClusterKube,
        settings: ClusterSettings, metrics: ClusterMetrics, directory: String, logger: Logger
    ) {
        self.registeredConfig = kubeconfig
        self.loadKubeconfig = loadKubeconfig
        self.kube = kube
        self.settings = settings
        self.metrics = metrics
        self.directory = directory
        self.logger = logger
        (wakeups, wakeupContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// kubectl's kubeconfig: the cluster's resolved context, written while the kubectl-proxy route runs.
    var kubectlKubeconfigPath: String { directory + "/kubectl-proxy.kubeconfig" }

    // MARK: ClusterChild

    /// Loads the cluster's kubeconfig configuration (nothing is probed yet: ``run()`` does).
    public func start() async throws {
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
        guard case .idle = state else { return }
        state = .running(Running(base: config, spawner: TaskSpawner()))
    }

    /// Evaluates the routes now and every `route.probe_interval_ms` (sooner on ``probe()`` or
    /// ``setStrategy(_:)``); kubectl and the relay run as child tasks of this call.
    public func run() async throws {
        guard case .running(let running) = state else { return try await waitForCancellation() }
        running.spawner.spawn { await self.evaluationLoop() }
        await running.spawner.run()
        try Task.checkCancellation()
    }

    /// Stops kubectl and the relay (already ended with ``run()``), removes kubectl's kubeconfig. Idempotent.
    public func stop() async {
        let previous = state
        state = .stopped
        wakeOtherEvaluations()
        guard case .running(let running) = previous else { return }
        running.spawner.finish()
        await running.kubectl?.stop()
        running.relay?.stop()
        _ = unlink(kubectlKubeconfigPath)
    }

    // MARK: Use

    /// The routes as `route.status` shows them.
    public func status() async -> JSONValue {
        var routes: [String: JSONValue] = [:]
        for kind in RouteKind.allCases { routes[kind.rawValue] = (health[kind] ?? RouteHealth()).json }
        var object: [String: JSONValue] = [
            "strategy": .string(await settings.value(.routeStrategy)),
            "route": decision?.route.map { .string($0.rawValue) } ?? .null,
            "state": .string(stateName),
            "routes": .object(routes),
            "evaluations": .int(Int64(evaluations)),
        ]
        object["reason"] = decision.map { .string($0.reason) } ?? .null
        object["last_switch"] = lastSwitch.map { switchJSON($0) } ?? .null
        if case .running(let running) = state, let kubectl = running.kubectl {
            object["kubectl_pid"] = await kubectl.processID.map { .int(Int64($0)) } ?? .null
            object["kubectl_port"] = await kubectl.servingPort.map { .int(Int64($0)) } ?? .null
        } else {
            object["kubectl_pid"] = .null
            object["kubectl_port"] = .null
        }
        return .object(object)
    }

    public func details() async -> [String: JSONValue] {
        ["route": decision?.route.map { .string($0.rawValue) } ?? .null, "state": .string(stateName)]
    }

    private var stateName: String {
        switch state {
        case .idle: "starting"
        case .unconfigured: "unconfigured"
        case .stopped: "stopped"
        case .running: decision == nil ? "evaluating" : (decision?.route == nil ? "failed" : "routed")
        }
    }

    private func switchJSON(_ decision: RouteDecision) -> JSONValue {
        [
            "route": decision.route.map { .string($0.rawValue) } ?? .null, "reason": .string(decision.reason),
            "at": .double(decision.at.timeIntervalSince1970),
        ]
    }

    /// Re-evaluates every route now and returns when done (`route.probe`).
    /// - Throws: `kubeconfig_invalid` without a kubeconfig, `cluster_stopping`, `cluster_not_ready`.
    public func probe() async throws {
        _ = try requireRunning()
        await evaluate(trigger: "route.probe")
    }

    /// Saves `strategy` in the cluster's settings and re-evaluates at once (`route.set`).
    public func setStrategy(_ strategy: RouteStrategy) async throws {
        _ = try await settings.set(["route.strategy": .string(strategy.name)])
        if case .running = state { await evaluate(trigger: "route.set") }
    }

    /// Re-evaluates when a `route.*` key changed (a reload of the cluster's `settings.json` or of
    /// a host settings file): only this cluster's routes.
    public func settingsChanged(_ keys: [String]) async {
        guard keys.contains(where: { $0.hasPrefix("route.") }), case .running = state else { return }
        await evaluate(trigger: "settings change (\(keys.filter { $0.hasPrefix("route.") }.joined(separator: ",")))")
    }

    /// The PID of the cluster's kubectl proxy, if one runs (tests check it is gone after unregister).
    public func kubectlProcessID() async -> Int32? {
        guard case .running(let running) = state else { return nil }
        return await running.kubectl?.processID
    }

    private func requireRunning() throws -> Running {
        switch state {
        case .running(let running): return running
        case .unconfigured:
            throw HostError(.kubeconfigInvalid, "the cluster was registered without a kubeconfig; it has no API routes")
        case .idle: throw HostError(.clusterNotReady, "the cluster's routes are not started yet", transient: true)
        case .stopped: throw HostError(.clusterStopping, "the cluster is stopping")
        }
    }

    // MARK: Evaluation

    /// Evaluates at start, then every `route.probe_interval_ms`; while no route is healthy, sooner
    /// (1 s doubling up to the interval), so a recovered route is found quickly.
    private func evaluationLoop() async {
        while !Task.isCancelled {
            await evaluate(trigger: evaluations == 0 ? "start" : (failedEvaluations > 0 ? "retry" : "interval/kubectl restart"))
            let interval = Duration.milliseconds(await settings.value(.routeProbeIntervalMilliseconds))
            var delay = interval
            if failedEvaluations > 0 {
                delay = min(interval, Backoff(initial: .seconds(1), cap: interval, jitter: 0).delay(attempt: failedEvaluations - 1))
            }
            // The interval, or an earlier wakeup; one waiter on the stream at a time. The stream is
            // read by this task, never by a child that gets cancelled: cancelling a task waiting
            // on an AsyncStream finishes the stream, and every later wait would then return at
            // once (a busy loop of evaluations, found by hostapp-stress). The timer wakes the
            // reader through the stream.
            let wait = delay
            let wakeupContinuation = self.wakeupContinuation
            var wakeup = wakeups.makeAsyncIterator()
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await Task.sleep(for: wait)
                        wakeupContinuation.yield()
                    } catch {}
                }
                _ = await wakeup.next()
                group.cancelAll()
            }
        }
    }

    /// One evaluation at a time: a second caller waits for the running one, then runs its own.
    private func evaluate(trigger: String) async {
        while evaluating {
            await withCheckedContinuation { evaluationWaiters.append($0) }
        }
        guard case .running = state else { return }
        evaluating = true
        defer {
            evaluating = false
            wakeOtherEvaluations()
        }
        await evaluateRoutes(trigger: trigger)
    }

    private func wakeOtherEvaluations() {
        let waiters = evaluationWaiters
        evaluationWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }

    private func evaluateRoutes(trigger: String) async {
        guard case .running(let running) = state else { return }
        let values = await settings.snapshot()
        let strategy = RouteStrategy(setting: values[.routeStrategy])
        let timeout = Duration.milliseconds(values[.routeProbeTimeoutMilliseconds])
        self.strategy = strategy
        evaluations += 1
        var failures: [String] = []
        for kind in strategy.candidates {
            let config: KubeClusterConfig
            switch await routeConfig(kind, base: running.base, values: values, timeout: timeout) {
            case .failure(let reason):
                // Stopping or cancelled (a stopping cluster, a caller gone): no verdict at all.
                guard !Task.isCancelled, case .running = state else { return }
                record(kind, RouteProbe.Outcome(latency: .zero, error: reason), probed: false)
                failures.append("\(kind.rawValue): \(reason)")
                continue
            case .success(let routed):
                config = routed
            }
            guard case .running = state else { return }
            let outcome = await RouteProbe.probe(config, timeout: timeout, logger: logger)
            guard !Task.isCancelled, case .running = state else { return }
            record(kind, outcome, probed: true)
            if let error = outcome.error {
                failures.append("\(kind.rawValue): \(error)")
                if case .pinned = strategy {
                    // A pinned route is used alone, even while it fails: never silently replaced.
                    try? await kube.useRoute(kind.rawValue, config: config)
                }
                continue
            }
            let reason: String
            if failures.isEmpty {
                reason = strategy == .auto ? "\(kind.rawValue) is the first route and is healthy" : "pinned to \(kind.rawValue), healthy"
            } else {
                reason = "\(kind.rawValue) is healthy after " + failures.joined(separator: "; ")
            }
            await choose(kind, config: config, reason: reason, trigger: trigger)
            return
        }
        let reason: String
        if case .pinned(let kind) = strategy {
            reason = "pinned route \(kind.rawValue) failed (no fallback): " + failures.joined(separator: "; ")
        } else {
            reason = "no route is healthy: " + failures.joined(separator: "; ")
        }
        await choose(nil, config: nil, reason: reason, trigger: trigger)
    }

    private enum Routed {
        case success(KubeClusterConfig)
        case failure(String)
    }

    /// The client configuration of route `kind`, starting what it needs (kubectl, the relay).
    private func routeConfig(_ kind: RouteKind, base: KubeClusterConfig, values: SettingsSnapshot, timeout: Duration) async -> Routed {
        switch kind {
        case .direct:
            return .success(RouteConfig.direct(base))
        case .kubectlProxy:
            let kubectl: KubectlProxyProcess
            switch startKubectl(base: base, configured: values[.routeKubectlPath]) {
            case .success(let started): kubectl = started
            case .failure(let unavailable): return .failure(unavailable.reason)
            }
            // kubectl needs a moment to start; wait for its port at least as long as a probe.
            guard let port = await kubectl.waitForPort(timeout: max(timeout, .seconds(10))) else {
                return .failure("kubectl proxy did not start serving: \(await kubectl.failure ?? "no port yet")")
            }
            return .success(RouteConfig.kubectlProxy(base, port: port))
        case .tailnet:
            guard let address = values[.routeSOCKS5Address], !address.isEmpty else {
                return .failure("route.socks5_address is not set")
            }
            guard let username = values[.routeSOCKS5Username], !username.isEmpty else {
                stopRelay()
                return .success(RouteConfig.tailnet(base, socks5: address))
            }
            let credentials = SOCKS5AuthRelay.Credentials(username: username, password: values[.routeSOCKS5Password] ?? "")
            guard let relay = await startRelay(upstream: address, credentials: credentials), let port = await relay.port() else {
                return .failure("the local SOCKS5 relay to \(address) could not listen")
            }
            return .success(RouteConfig.tailnet(base, socks5: "127.0.0.1:\(port)"))
        }
    }

    /// Records a probe's outcome and its metrics.
    private func record(_ kind: RouteKind, _ outcome: RouteProbe.Outcome, probed: Bool) {
        var entry = health[kind] ?? RouteHealth()
        entry.state = outcome.error == nil ? .healthy : .failed
        entry.lastError = outcome.error
        entry.checkedAt = Date()
        if probed { entry.latency = outcome.latency }
        health[kind] = entry
        let labels = [("route", kind.rawValue)]
        if probed {
            metrics.counter(Self.requestsCounter, help: "Health probes (GET /version) sent over each API route of the cluster.", labels: labels)
                .increment()
            metrics.gauge(Self.latencyGauge, help: "Duration of the last health probe of each API route, in seconds.", labels: labels)
                .set(outcome.latency.seconds)
        }
        if outcome.error != nil {
            metrics.counter(Self.errorsCounter, help: "Failed health probes (or routes that could not start) of each API route.", labels: labels)
                .increment()
        }
    }

    /// Applies a decision: hands the route to the Kubernetes child, logs and counts a change.
    private func choose(_ kind: RouteKind?, config: KubeClusterConfig?, reason: String, trigger: String) async {
        let previous = decision?.route
        let now = Date()
        let changed = decision == nil || previous != kind
        failedEvaluations = kind == nil ? failedEvaluations + 1 : 0
        decision = RouteDecision(route: kind, reason: reason, at: now)
        if let kind, let config {
            do {
                try await kube.useRoute(kind.rawValue, config: config)
            } catch {
                logger.error(
                    "cannot use route \(kind.rawValue): \(error)",
                    metadata: ["event": "route_failed", "route": .string(kind.rawValue)])
            }
        }
        if kind != .kubectlProxy, strategy != .pinned(.kubectlProxy) { await stopKubectl() }
        if kind != .tailnet, strategy != .pinned(.tailnet) { stopRelay() }
        for route in RouteKind.allCases {
            metrics.gauge(Self.currentGauge, help: "1 for the API route the cluster uses now, 0 for the others.", labels: [("route", route.rawValue)])
                .set(Int64(route == kind ? 1 : 0))
        }
        guard changed else { return }
        lastSwitch = decision
        let event: String
        switch kind {
        case nil: event = "route_failed"
        case .direct?: event = "route_selected"
        case _? where strategy == .auto:
            event = "route_fallback"
            metrics.counter(Self.fallbacksCounter, help: "Times auto routing fell back past a failed route.", labels: []).increment()
        case _?: event = "route_selected"
        }
        let metadata: Logger.Metadata = [
            "event": .string(event), "route": .string(kind?.rawValue ?? "none"), "previous": .string(previous?.rawValue ?? "none"),
            "strategy": .string(strategy.name), "trigger": .string(trigger), "reason": .string(reason),
        ]
        if kind == nil {
            logger.error("no API route for the cluster: \(reason)", metadata: metadata)
        } else {
            logger.info("API route \(kind?.rawValue ?? "none"): \(reason)", metadata: metadata)
        }
    }

    // MARK: kubectl proxy and the relay

    private func startKubectl(base: KubeClusterConfig, configured: String?) -> Result<KubectlProxyProcess, KubectlUnavailable> {
        guard case .running(var running) = state else { return .failure(KubectlUnavailable("the cluster is stopping")) }
        if let existing = running.kubectl { return .success(existing) }
        guard let executable = KubectlProxyProcess.locateKubectl(configured) else {
            return .failure(
                KubectlUnavailable(configured.map { "route.kubectl_path \($0) is not an executable" } ?? "no kubectl on PATH (set route.kubectl_path)"))
        }
        do {
            let yaml = try KubeconfigLoader.renderYAML(base.renderedDocument())
            try AtomicFile.write(Array(yaml.utf8), to: kubectlKubeconfigPath)
        } catch {
            return .failure(KubectlUnavailable("cannot write kubectl's kubeconfig: \(error)"))
        }
        let process = KubectlProxyProcess(
            executable: executable,
            arguments: [
                "proxy", "--port=0", "--address=127.0.0.1", "--kubeconfig", kubectlKubeconfigPath, "--context", base.contextName,
            ],
            logger: logger, onRestartServing: { [wakeupContinuation] in wakeupContinuation.yield() })
        guard running.spawner.spawn({ await process.run() }) else { return .failure(KubectlUnavailable("the cluster is stopping")) }
        running.kubectl = process
        state = .running(running)
        return .success(process)
    }

    /// Why the kubectl-proxy route cannot start.
    struct KubectlUnavailable: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    private func stopKubectl() async {
        guard case .running(var running) = state, let kubectl = running.kubectl else { return }
        running.kubectl = nil
        state = .running(running)
        await kubectl.stop()
        _ = unlink(kubectlKubeconfigPath)
    }

    private func startRelay(upstream: String, credentials: SOCKS5AuthRelay.Credentials) async -> SOCKS5AuthRelay? {
        guard case .running(var running) = state else { return nil }
        if let existing = running.relay {
            if existing.upstream == upstream && existing.credentials == credentials { return existing }
            running.relay = nil
            existing.stop()
        }
        let relay = SOCKS5AuthRelay(upstream: upstream, credentials: credentials, logger: logger)
        guard running.spawner.spawn({ await relay.run() }) else { return nil }
        running.relay = relay
        state = .running(running)
        return relay
    }

    private func stopRelay() {
        guard case .running(var running) = state, let relay = running.relay else { return }
        running.relay = nil
        state = .running(running)
        relay.stop()
    }

    // MARK: Metrics

    static let requestsCounter = "hostapp_cluster_route_requests_total"
    static let errorsCounter = "hostapp_cluster_route_errors_total"
    static let latencyGauge = "hostapp_cluster_route_latency_seconds"
    static let fallbacksCounter = "hostapp_cluster_route_fallbacks_total"
    static let currentGauge = "hostapp_cluster_route_current"
}
