import GuildNetCore
import GuildNetKube
import GuildNetMetrics
import GuildNetSettings
import GuildNetStateDirectory
import GuildNetStore
import Logging
import Synchronization

/// The root of the supervision tree: the registry of clusters keyed by ``ClusterID``.
///
/// - ``run()`` owns the host's task group: every cluster's life and the DB idle sweeper run in it.
///   Nothing the host starts is detached.
/// - ``register(_:)``, ``cluster(named:)`` and ``unregister(_:purge:)`` are safe to call concurrently.
///   The actor does registry bookkeeping only: kubeconfig resolution runs before it is entered,
///   file preparation in the cluster's own start, purge after the registry update, each off the
///   actor; while a cluster starts or stops the host only awaits that cluster's state with the
///   actor released (actors are reentrant), so a slow cluster or disk never holds up others.
/// - At most one instance per id exists: registering an id whose previous instance is still
///   stopping waits for that teardown to finish first.
public actor HostActor {
    public nonisolated let configuration: HostConfiguration
    /// Live cluster actors, supervised tasks and open DB handles of this host.
    public nonisolated let counters = ResourceCounters()
    public nonisolated let budget: DatabaseBudget
    private let logger: Logger
    private let startedAt = ContinuousClock.now

    private enum Entry {
        case active(ClusterActor)
        case stopping(ClusterActor)

        var cluster: ClusterActor {
            switch self {
            case .active(let cluster), .stopping(let cluster): cluster
            }
        }
    }

    private var entries: [String: Entry] = [:]
    /// The host-wide settings layers now (``HostConfiguration/settings`` until a reload).
    private var hostSettings: HostSettingsSources
    /// Every cluster's ``ClusterActor/run()`` is a child task of ``run()`` through this.
    private let clusterTasks = TaskSpawner()
    private let shutdownFlag = Atomic<Bool>(false)
    private var runFinished = false

    public init(configuration: HostConfiguration) {
        var configuration = configuration
        if configuration.settingsWatchHub == nil { configuration.settingsWatchHub = FileWatchHub() }
        self.configuration = configuration
        self.logger = configuration.logger
        self.budget = DatabaseBudget(configuration: configuration.databaseBudget, logger: configuration.logger)
        self.hostSettings = configuration.settings
        configuration.metrics.setClustersActive(0)
        let counters = self.counters
        configuration.metrics.observeSupervisedTasks { counters.snapshot.supervisedTasks }
    }

    // MARK: Life

    /// Runs the host until ``beginShutdown()`` (or cancellation), then tears every cluster down in
    /// parallel, waiting at most ``HostConfiguration/shutdownDeadline`` before cancelling stragglers.
    /// - Parameter onStarted: called once `host_start` is logged (the daemon logs `host_ready` after it).
    public func run(onStarted: @Sendable () async -> Void = {}) async {
        logger.info("host running", metadata: ["event": "host_start", "state_dir": .string(configuration.stateDirectory)])
        await onStarted()  // `host_ready` never precedes `host_start`
        let budget = self.budget
        clusterTasks.spawn { await budget.run() }
        if let hub = configuration.settingsWatchHub { clusterTasks.spawn { await hub.run() } }
        await clusterTasks.run(drain: { await stopAllClusters() })
        runFinished = true
        logger.info("host stopped", metadata: ["event": "host_stopped"])
    }

    /// Starts host shutdown: no new registrations; ``run()`` tears everything down and returns.
    /// Safe from any context (signal handlers, ServiceLifecycle's graceful shutdown); idempotent.
    public nonisolated func beginShutdown() {
        shutdownFlag.store(true, ordering: .sequentiallyConsistent)
        clusterTasks.finish()
    }

    /// Stops every cluster in parallel, waiting at most the shutdown deadline.
    private func stopAllClusters() async {
        shutdownFlag.store(true, ordering: .sequentiallyConsistent)
        let clusters = entries.values.map(\.cluster)
        logger.info("host shutting down", metadata: ["event": "host_stop", "clusters": .stringConvertible(clusters.count)])
        for cluster in clusters { cluster.requestStop() }
        let deadline = configuration.shutdownDeadline
        let allStopped = await withTaskGroup(of: Bool.self) { waiters in
            for cluster in clusters {
                waiters.addTask { await cluster.waitUntilStopped(timeout: deadline) }
            }
            return await waiters.reduce(true) { $0 && $1 }
        }
        if !allStopped {
            logger.error("some clusters did not stop within \(deadline); cancelling them", metadata: ["event": "host_stop_timeout"])
        }
    }

    /// Whether shutdown has begun.
    public nonisolated var isShuttingDown: Bool { shutdownFlag.load(ordering: .sequentiallyConsistent) }

    // MARK: Registry

    /// Registers a cluster and waits until it is ready or degraded (at most
    /// ``HostConfiguration/startTimeout``).
    ///
    /// The kubeconfig is resolved before the registry is touched (a broken one is refused and
    /// nothing is written); the cluster's files are prepared by its own start. Re-registering a
    /// name that is already registered changes nothing and returns `created == false` with the
    /// existing cluster's state (initial settings are not re-applied).
    public func register(_ request: RegisterRequest) async throws -> RegisterResult {
        guard !isShuttingDown else { throw HostError(.hostShuttingDown, "the host is shutting down") }
        let id = try ClusterID(name: request.name)
        let kubeconfig = try await Self.resolveKubeconfig(request)
        // One instance per id: wait for a previous instance's teardown to finish.
        while case .stopping(let previous)? = entries[id.key] {
            _ = await previous.waitUntilStopped(timeout: configuration.teardownDeadline)
            if case .stopping(let same)? = entries[id.key], same === previous, previous.state == .stopped {
                entries[id.key] = nil
            }
            guard !isShuttingDown else { throw HostError(.hostShuttingDown, "the host is shutting down") }
        }
        if case .active(let existing)? = entries[id.key] {
            guard existing.id.name == id.name else { throw Self.collision(id, existing.id) }
            let state = await existing.waitUntilSettled(timeout: configuration.startTimeout)
            if let failure = existing.preparationFailure { throw failure }
            return RegisterResult(cluster: existing.id, created: false, state: state)
        }
        var configuration = self.configuration
        configuration.settings = hostSettings
        let cluster = ClusterActor(
            id: id,
            registration: ClusterActor.Registration(context: request.context, kubeconfig: kubeconfig, settings: request.settings),
            configuration: configuration,
            budget: budget,
            counters: counters
        )
        entries[id.key] = .active(cluster)
        publishActiveCount()
        configuration.metrics.clusterRegistered()
        guard clusterTasks.spawn({ await self.supervise(cluster) }) else {
            forget(cluster)
            throw HostError(.hostShuttingDown, "the host is shutting down")
        }
        let state = await cluster.waitUntilSettled(timeout: configuration.startTimeout)
        if let failure = cluster.preparationFailure {
            forget(cluster)
            throw failure
        }
        return RegisterResult(cluster: id, created: true, state: state)
    }

    /// Resolves the request's kubeconfig off the actor (it reads and parses the operator's files).
    private nonisolated static func resolveKubeconfig(_ request: RegisterRequest) async throws -> ResolvedKubeconfig? {
        guard let path = request.kubeconfig else { return nil }
        return try ResolvedKubeconfig.load(path: path, context: request.context)
    }

    /// A cluster's whole life in the host's task group.
    private func supervise(_ cluster: ClusterActor) async {
        await cluster.run()
        forget(cluster)
    }

    /// Removes `cluster` from the registry if it is still the entry for its id.
    private func forget(_ cluster: ClusterActor) {
        if let entry = entries[cluster.id.key], entry.cluster === cluster {
            entries[cluster.id.key] = nil
        }
        publishActiveCount()
    }

    /// The running cluster registered under `name`.
    /// - Throws: `cluster_not_found`, `cluster_stopping`, `cluster_id_collision`, `invalid_cluster_name`.
    public func cluster(named name: String) throws -> ClusterActor {
        let id = try ClusterID(name: name)
        switch entries[id.key] {
        case .active(let cluster)?:
            guard cluster.id.name == id.name else { throw Self.collision(id, cluster.id) }
            return cluster
        case .stopping?:
            throw HostError(.clusterStopping, "cluster \(String(reflecting: name)) is being unregistered")
        case nil:
            throw HostError(.clusterNotFound, "no cluster named \(String(reflecting: name)) is registered")
        }
    }

    /// Unregisters a cluster and returns once its teardown finished: every child stopped, its DB
    /// closed, its metric series removed. With `purge`, its directory is deleted afterwards.
    /// - Throws: `teardown_timeout` when teardown takes longer than the deadline (it goes on).
    public func unregister(_ name: String, purge: Bool = false) async throws -> UnregisterResult {
        let id = try ClusterID(name: name)
        guard let entry = entries[id.key] else {
            throw HostError(.clusterNotFound, "no cluster named \(String(reflecting: name)) is registered")
        }
        let cluster = entry.cluster
        guard cluster.id.name == id.name else { throw Self.collision(id, cluster.id) }
        if case .active = entry {
            entries[id.key] = .stopping(cluster)
            publishActiveCount()
            configuration.metrics.clusterUnregistered()
            cluster.requestStop()
        }
        let clock = ContinuousClock()
        let began = clock.now
        let stopped = await cluster.waitUntilStopped(timeout: configuration.teardownDeadline)
        guard stopped else {
            throw HostError(.teardownTimeout, "cluster \(id.key) did not finish teardown within \(configuration.teardownDeadline); it is still stopping")
        }
        if case .stopping(let same)? = entries[id.key], same === cluster {
            entries[id.key] = nil
        }
        if purge {
            // Off the actor: `ClusterStorage.purge` is nonisolated and async.
            try await configuration.storage.purge(id)
        }
        return UnregisterResult(cluster: id, purged: purge, teardownSeconds: began.duration(to: clock.now).seconds)
    }

    /// Every registered cluster (including those stopping), sorted by key.
    public func list() -> [ClusterSummary] {
        entries.values
            .map { ClusterSummary(id: $0.cluster.id, state: $0.cluster.state) }
            .sorted { $0.id < $1.id }
    }

    /// Host-level facts for `host.status`.
    public func status() async -> HostStatus {
        let summaries = list()
        return HostStatus(
            stateDirectory: configuration.stateDirectory,
            uptimeSeconds: startedAt.duration(to: .now).seconds,
            clusters: summaries.count,
            clustersByState: Dictionary(grouping: summaries, by: \.state).mapValues(\.count),
            storageLayout: configuration.storage.layoutName,
            openDatabases: await budget.openCount,
            resources: counters.snapshot,
            shuttingDown: isShuttingDown
        )
    }

    /// The active clusters (not those stopping).
    func activeClusters() -> [ClusterActor] {
        entries.values.compactMap { entry in
            if case .active(let cluster) = entry { return cluster }
            return nil
        }
    }

    func setHostSettings(_ sources: HostSettingsSources) {
        hostSettings = sources
    }

    /// Runs `job` as a child task of ``run()`` (dropped once shutdown began).
    nonisolated func spawnHostTask(_ job: @escaping @Sendable () async -> Void) {
        clusterTasks.spawn(job)
    }

    private func publishActiveCount() {
        let active = entries.values.reduce(0) { count, entry in
            if case .active = entry { return count + 1 }
            return count
        }
        configuration.metrics.setClustersActive(active)
    }

    private static func collision(_ requested: ClusterID, _ existing: ClusterID) -> HostError {
        HostError(
            .clusterIDCollision,
            "cluster name \(String(reflecting: requested.name)) maps to id \(requested.key), which is already used by \(String(reflecting: existing.name))")
    }
}

/// Parameters of `cluster.register`.
public struct RegisterRequest: Sendable {
    public var name: String
    public var kubeconfig: String?
    public var context: String?
    public var settings: [String: JSONValue]?

    public init(name: String, kubeconfig: String? = nil, context: String? = nil, settings: [String: JSONValue]? = nil) {
        self.name = name
        self.kubeconfig = kubeconfig
        self.context = context
        self.settings = settings
    }
}

public struct RegisterResult: Sendable {
    public var cluster: ClusterID
    /// `false` when the name was already registered (nothing changed).
    public var created: Bool
    public var state: ClusterState
}

public struct UnregisterResult: Sendable {
    public var cluster: ClusterID
    public var purged: Bool
    public var teardownSeconds: Double
}

public struct ClusterSummary: Sendable {
    public var id: ClusterID
    public var state: ClusterState
}

public struct HostStatus: Sendable {
    public var stateDirectory: String
    public var uptimeSeconds: Double
    public var clusters: Int
    public var clustersByState: [ClusterState: Int]
    public var storageLayout: String
    public var openDatabases: Int
    public var resources: ResourceCounters.Snapshot
    public var shuttingDown: Bool
}
