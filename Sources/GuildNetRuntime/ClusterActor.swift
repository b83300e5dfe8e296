import Foundation
import GuildNetCore
import GuildNetKube
import GuildNetMetrics
import GuildNetSettings
import GuildNetStateDirectory
import GuildNetStorage
import GuildNetStore
import Logging

/// One registered cluster: the supervisor of its children, owning one task group.
///
/// ```
/// ClusterActor(id)
///  ├─ metrics   ClusterMetrics   series labelled cluster_id (started first, removed last)
///  ├─ store     ClusterStore     <state-dir>/clusters/<id>/local.db
///  ├─ settings  ClusterSettings  <state-dir>/clusters/<id>/settings.json + host layers
///  ├─ kube      ClusterKube      KubeClient + informers (each informer a child task)
///  ├─ rethink   ClusterRethink   RethinkConnector: pool + changefeeds (each feed a child task)
///  ├─ forwards  ClusterForwards  port-forwards: a listener each, one tunnel per connection, health checks
///  └─ routes    ClusterRoutes    API routes (direct, kubectl-proxy, tailnet): probes, kubectl process, choice
/// ```
///
/// Lifecycle: `registering → starting → ready | degraded → stopping → stopped`. ``run()`` is the
/// cluster's whole life and runs in the host's task group. It first prepares the cluster's place
/// in the injected ``ClusterStorage`` (a failure there ends the cluster at once, see
/// ``preparationFailure``); then every child is supervised by a child task of the cluster's own
/// group, restarted per ``RestartPolicy`` when it fails, and stopped when the group is cancelled.
/// ``run()`` returns only when every child has stopped.
public actor ClusterActor {
    public nonisolated let id: ClusterID
    public nonisolated let paths: ClusterPaths
    public nonisolated let metrics: ClusterMetrics
    /// The cluster's key-value store: its own SQLite DB, or its view of the legacy host-wide DB.
    public nonisolated let store: any ClusterKeyValueStore
    public nonisolated let settings: ClusterSettings
    /// The cluster's Kubernetes client and informers.
    public nonisolated let kube: ClusterKube
    /// The cluster's RethinkDB connector and changefeeds.
    public nonisolated let rethink: ClusterRethink
    /// The cluster's port-forwards.
    public nonisolated let forwards: ClusterForwards
    /// The cluster's API routes: which way its client reaches the API server.
    public nonisolated let routes: ClusterRoutes
    /// Supervised children, in start order (metrics is started before them and outlives them).
    nonisolated let children: [any ClusterChild]

    private let policy: RestartPolicy
    private let counters: ResourceCounters
    private let storage: any ClusterStorage
    /// What `cluster.register` asked for, until the cluster's place is prepared.
    private var registration: Registration?
    private let preparationFailureCell = LockedValue<HostError?>(nil)
    private let logger: Logger
    private let createdAt = Date()
    private let stateCell: StateCell

    private var childStatus: [String: ChildStatus] = [:]
    private var watchers: [AsyncStream<ClusterState>.Continuation] = []
    private var lastError: HostError?
    private let stopRequests: AsyncStream<Void>
    private let stopContinuation: AsyncStream<Void>.Continuation

    /// What `cluster.register` brings: the context named, the resolved kubeconfig, initial settings.
    struct Registration: Sendable {
        var context: String?
        var kubeconfig: ResolvedKubeconfig?
        var settings: [String: JSONValue]?
    }

    init(
        id: ClusterID,
        registration: Registration,
        configuration: HostConfiguration,
        budget: DatabaseBudget,
        counters: ResourceCounters
    ) {
        let logger = configuration.logger.scoped(to: id)
        let paths = StateDirectory(configuration.stateDirectory).cluster(id)
        let metrics = configuration.metrics.makeClusterMetrics(for: id)
        let storage = configuration.storage
        self.id = id
        self.paths = paths
        self.metrics = metrics
        self.logger = logger
        self.policy = configuration.restartPolicy
        self.counters = counters
        self.storage = storage
        self.registration = registration
        self.stateCell = StateCell(.registering)
        var storeEnvironment = StoreEnvironment(
            configuration: configuration.store, budget: budget, counters: counters, logger: logger,
            onOpenChange: { open in metrics.setDatabaseOpen(open) })
        storeEnvironment.onError = { _, duringOpen in
            if duringOpen { metrics.databaseOpenFailed() } else { metrics.databaseError() }
        }
        self.store = storage.makeStore(for: id, environment: storeEnvironment)
        self.settings = ClusterSettings(
            cluster: id, storage: storage.makeSettingsStorage(for: id, logger: logger), host: configuration.settings,
            initial: registration.settings, logger: logger, watchHub: configuration.settingsWatchHub)
        self.kube = ClusterKube(
            kubeconfig: registration.kubeconfig?.config, loadKubeconfig: { try await storage.kubeconfig(of: id) },
            settings: settings, metrics: metrics, logger: logger)
        self.rethink = ClusterRethink(settings: settings, kube: kube, metrics: metrics, logger: logger)
        self.forwards = ClusterForwards(kube: kube, settings: settings, metrics: metrics, logger: logger)
        self.routes = ClusterRoutes(
            kubeconfig: registration.kubeconfig?.config, loadKubeconfig: { try await storage.kubeconfig(of: id) }, kube: kube,
            settings: settings, metrics: metrics, directory: paths.directory, logger: logger)
        let context = ClusterContext(cluster: id, paths: paths, logger: logger, metrics: metrics)
        self.children = [store, settings, kube, rethink, forwards, routes] + configuration.extraChildren(context)
        (stopRequests, stopContinuation) = AsyncStream<Void>.makeStream()
        counters.increment(.cluster)
        for child in children { counters.track(child) }
        metrics.lifecycle(.create)
        logger.lifecycle(.create, "cluster created")
    }

    deinit {
        counters.decrement(.cluster)
    }

    /// The cluster's state, readable without waiting for the actor.
    public nonisolated var state: ClusterState { stateCell.value }

    /// Why the cluster's place could not be prepared (its directory belongs to another name, a
    /// disk error); set before the state becomes `stopped`, `nil` otherwise.
    public nonisolated var preparationFailure: HostError? { preparationFailureCell.withLock { $0 } }

    // MARK: Life

    /// The cluster's whole life: starts and supervises every child, waits for ``requestStop()`` or
    /// cancellation, then stops every child and removes the cluster's metric series.
    func run() async {
        counters.increment(.task)
        defer { counters.decrement(.task) }
        guard await prepare() else { return }
        do {
            try await metrics.start()
        } catch {
            logger.error("metrics failed to start: \(error)", metadata: ["event": "child_failed"])
        }
        setState(.starting)
        metrics.lifecycle(.start)
        logger.lifecycle(.start, "cluster starting", metadata: ["children": .string(children.map(\.childID).joined(separator: ","))])
        for child in children {
            childStatus[child.childID] = ChildStatus(id: child.childID, state: .starting)
            metrics.registerChild(child.childID)
        }
        // A settings change (reload or write) is applied to the children that depend on the keys.
        // Weak: the settings actor keeps the handler, and rethink and routes keep the settings, so
        // strong captures would be a cycle that outlives the cluster (ClusterLifetimeTests).
        await settings.onChange { [weak rethink, weak routes] keys in
            await rethink?.settingsChanged(keys)
            await routes?.settingsChanged(keys)
        }
        await withDiscardingTaskGroup { group in
            for child in children {
                group.addTask { await self.supervise(child) }
            }
            for await _ in stopRequests {}
            setState(.stopping)
            metrics.lifecycle(.stop)
            logger.lifecycle(.stop, "cluster stopping")
            group.cancelAll()
        }
        await metrics.stop()
        metrics.unregisterAll()
        setState(.stopped)
        logger.lifecycle(.destroy, "cluster destroyed")
        for watcher in watchers { watcher.finish() }
        watchers.removeAll()
    }

    /// Prepares the cluster's place in its storage; on failure ends the cluster (nothing started).
    private func prepare() async -> Bool {
        guard let registration else { return true }
        self.registration = nil
        do {
            try await storage.prepare(id, context: registration.context, kubeconfig: registration.kubeconfig?.yaml)
            return true
        } catch {
            let failure = HostError.wrapping(error, as: .io)
            preparationFailureCell.withLock { $0 = failure }
            lastError = failure
            logger.error(
                "cannot prepare the cluster's storage: \(failure.message)",
                metadata: ["event": "cluster_prepare_failed", "code": .string(failure.code.rawValue)])
            await store.stop()
            metrics.unregisterAll()
            setState(.stopped)
            for watcher in watchers { watcher.finish() }
            watchers.removeAll()
            return false
        }
    }

    /// Asks ``run()`` to stop the cluster. Safe from any context; idempotent.
    nonisolated func requestStop() {
        stopContinuation.finish()
    }

    // MARK: Supervision

    private func supervise(_ child: any ClusterChild) async {
        counters.increment(.task)
        defer { counters.decrement(.task) }
        let childID = child.childID
        let clock = ContinuousClock()
        var failures: [ContinuousClock.Instant] = []
        var attempt = 0
        // True whenever the child may hold resources: before its first start too, because some
        // children (the store) can be used lazily before being started, and must still be closed.
        var needsStop = true
        while !Task.isCancelled {
            updateChild(childID) { $0.state = .starting }
            let startedAt = clock.now
            needsStop = true
            do {
                try await child.start()
                updateChild(childID) { $0.state = .running }
                try await child.run()
                if Task.isCancelled { break }
                throw HostError(.childFailed, "child \(childID) exited without being stopped")
            } catch {
                await child.stop()
                needsStop = false
                if Task.isCancelled { break }
                let failure = HostError.wrapping(error, as: .childFailed)
                lastError = failure
                let now = clock.now
                if startedAt.duration(to: now) >= policy.resetAfter { attempt = 0 }
                failures.append(now)
                failures.removeAll { $0.duration(to: now) > policy.window }
                metrics.lifecycle(.childFailed)
                logger.error(
                    "child \(childID) failed: \(failure.message)",
                    metadata: ["event": .string(LifecycleEvent.childFailed.rawValue), "child": .string(childID), "code": .string(failure.code.rawValue)])
                guard failures.count <= policy.maxRestarts else {
                    updateChild(childID) {
                        $0.state = .failed
                        $0.lastError = failure
                    }
                    logger.error(
                        "child \(childID) failed \(failures.count) times within \(policy.window); not restarting it",
                        metadata: ["event": .string(LifecycleEvent.childGaveUp.rawValue), "child": .string(childID)])
                    metrics.lifecycle(.childGaveUp)
                    metrics.childGaveUp(childID)
                    return
                }
                updateChild(childID) {
                    $0.state = .restarting
                    $0.lastError = failure
                }
                do {
                    try await Task.sleep(for: policy.backoff.delay(attempt: attempt))
                } catch {
                    break
                }
                attempt += 1
                updateChild(childID) { $0.restarts += 1 }
                metrics.childRestarted(childID)
                metrics.lifecycle(.childRestarted)
                logger.lifecycle(.childRestarted, "restarting child \(childID)", metadata: ["child": .string(childID), "restart": .stringConvertible(attempt)])
            }
        }
        if needsStop { await child.stop() }
        updateChild(childID) { $0.state = .stopped }
    }

    private func updateChild(_ childID: String, _ change: (inout ChildStatus) -> Void) {
        var status = childStatus[childID] ?? ChildStatus(id: childID, state: .starting)
        change(&status)
        childStatus[childID] = status
        recomputeState()
    }

    private func recomputeState() {
        let current = stateCell.value
        guard current == .starting || current == .ready || current == .degraded else { return }
        let states = childStatus.values.map(\.state)
        let next: ClusterState
        if states.contains(where: { $0 == .restarting || $0 == .failed }) {
            next = .degraded
        } else if states.allSatisfy({ $0 == .running }) {
            next = .ready
        } else {
            next = current
        }
        guard next != current else { return }
        setState(next)
        switch next {
        case .ready:
            metrics.lifecycle(.ready)
            logger.lifecycle(.ready, "cluster ready")
        case .degraded:
            metrics.lifecycle(.degraded)
            let reason = lastError?.description ?? "a child failed"
            logger.lifecycle(.degraded, "cluster degraded: \(reason)")
        default:
            break
        }
    }

    private func setState(_ newState: ClusterState) {
        stateCell.value = newState
        metrics.setState(newState)
        watchers.removeAll { watcher in
            if case .terminated = watcher.yield(newState) { return true }
            return false
        }
    }

    // MARK: Waiting

    /// Waits until the state satisfies `predicate` or `timeout` passes; returns the state then.
    func waitForState(timeout: Duration, _ predicate: @escaping @Sendable (ClusterState) -> Bool) async -> ClusterState {
        let current = stateCell.value
        if predicate(current) || current == .stopped { return current }
        let (stream, continuation) = AsyncStream<ClusterState>.makeStream()
        watchers.append(continuation)
        let reached: ClusterState? = await withTaskGroup(of: ClusterState?.self) { group in
            group.addTask {
                for await state in stream where predicate(state) || state == .stopped { return state }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        continuation.finish()
        return reached ?? stateCell.value
    }

    /// Waits until the cluster has finished starting (ready or degraded), or `timeout`.
    public func waitUntilSettled(timeout: Duration) async -> ClusterState {
        await waitForState(timeout: timeout) { $0.hasSettled }
    }

    /// Waits until teardown finished; returns `false` if `timeout` passed first.
    public func waitUntilStopped(timeout: Duration) async -> Bool {
        await waitForState(timeout: timeout) { $0 == .stopped } == .stopped
    }

    // MARK: Status

    /// A snapshot for `cluster.status`.
    public func status() async -> ClusterStatus {
        var children: [ChildStatus] = []
        children.append(ChildStatus(id: metrics.childID, state: state == .stopped ? .stopped : .running, details: await metrics.details()))
        for child in self.children {
            var status = childStatus[child.childID] ?? ChildStatus(id: child.childID, state: .starting)
            status.details = await child.details()
            children.append(status)
        }
        return ClusterStatus(id: id, state: state, createdAt: createdAt, children: children, lastError: lastError)
    }
}

/// A snapshot of one cluster.
public struct ClusterStatus: Sendable {
    public var id: ClusterID
    public var state: ClusterState
    public var createdAt: Date
    public var children: [ChildStatus]
    public var lastError: HostError?
}

/// The cluster state, mirrored for lock-free reads from outside the actor.
final class StateCell: Sendable {
    private let storage: LockedValue<ClusterState>
    init(_ state: ClusterState) { storage = LockedValue(state) }
    var value: ClusterState {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
