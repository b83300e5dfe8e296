import Foundation
import GuildNetCore
import GuildNetMetrics
import GuildNetStore
import Logging
import Synchronization

/// The root of the supervision tree: the registry of clusters keyed by ``ClusterID``.
///
/// - ``run()`` owns the host's task group: every cluster's life and the DB idle sweeper run in it.
///   Nothing the host starts is detached.
/// - ``register(_:)``, ``cluster(named:)`` and ``unregister(_:purge:)`` are safe to call concurrently.
///   While a cluster starts or stops, the host only awaits that cluster's state with the actor
///   released (actors are reentrant), so a slow cluster never holds up requests for others.
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
    private let spawnStream: AsyncStream<ClusterActor>
    private let spawnContinuation: AsyncStream<ClusterActor>.Continuation
    private let shutdownFlag = Atomic<Bool>(false)
    private var runFinished = false

    public init(configuration: HostConfiguration) {
        self.configuration = configuration
        self.logger = configuration.logger
        self.budget = DatabaseBudget(configuration: configuration.databaseBudget, logger: configuration.logger)
        (spawnStream, spawnContinuation) = AsyncStream<ClusterActor>.makeStream()
        configuration.metrics.setClustersActive(0)
    }

    // MARK: Life

    /// Runs the host until ``beginShutdown()`` (or cancellation), then tears every cluster down in
    /// parallel, waiting at most ``HostConfiguration/shutdownDeadline`` before cancelling stragglers.
    /// - Parameter onStarted: called once `host_start` is logged (the daemon logs `host_ready` after it).
    public func run(onStarted: @Sendable () async -> Void = {}) async {
        logger.info("host running", metadata: ["event": "host_start", "state_dir": .string(configuration.stateDirectory)])
        await onStarted()  // issue 19: `host_ready` never precedes `host_start`
        await withDiscardingTaskGroup { group in
            let budget = self.budget
            group.addTask { await budget.run() }
            for await cluster in spawnStream {
                group.addTask {
                    await cluster.run()
                    await self.clusterFinished(cluster)
                }
            }
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
            group.cancelAll()
        }
        runFinished = true
        logger.info("host stopped", metadata: ["event": "host_stopped"])
    }

    /// Starts host shutdown: no new registrations; ``run()`` tears everything down and returns.
    /// Safe from any context (signal handlers, ServiceLifecycle's graceful shutdown); idempotent.
    public nonisolated func beginShutdown() {
        shutdownFlag.store(true, ordering: .sequentiallyConsistent)
        spawnContinuation.finish()
    }

    /// Whether shutdown has begun.
    public nonisolated var isShuttingDown: Bool { shutdownFlag.load(ordering: .sequentiallyConsistent) }

    private func clusterFinished(_ cluster: ClusterActor) {
        if let entry = entries[cluster.id.key], entry.cluster === cluster {
            entries[cluster.id.key] = nil
        }
        publishActiveCount()
    }

    // MARK: Registry

    /// Registers a cluster and waits until it is ready or degraded (at most
    /// ``HostConfiguration/startTimeout``).
    ///
    /// Re-registering a name that is already registered changes nothing and returns
    /// `created == false` with the existing cluster's state (initial settings are not re-applied).
    public func register(_ request: RegisterRequest) async throws -> RegisterResult {
        guard !isShuttingDown else { throw HostError(.hostShuttingDown, "the host is shutting down") }
        let id = try ClusterID(name: request.name)
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
            return RegisterResult(cluster: existing.id, created: false, state: state)
        }
        switch configuration.storageLayout {
        case .perCluster:
            let paths = ClusterPaths(stateDirectory: configuration.stateDirectory, cluster: id)
            try ClusterFiles.prepare(paths: paths, cluster: id, kubeconfig: request.kubeconfig, context: request.context)
        case .legacyGlobal(let database):
            if let kubeconfig = request.kubeconfig {
                try ClusterFiles.storeLegacyKubeconfig(from: kubeconfig, context: request.context, cluster: id, database: database)
            }
        }
        let cluster = ClusterActor(
            id: id,
            initialSettings: request.settings,
            configuration: configuration,
            budget: budget,
            counters: counters
        )
        entries[id.key] = .active(cluster)
        publishActiveCount()
        spawnContinuation.yield(cluster)
        let state = await cluster.waitUntilSettled(timeout: configuration.startTimeout)
        return RegisterResult(cluster: id, created: true, state: state)
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
            guard case .perCluster = configuration.storageLayout else {
                throw HostError(.invalidField, "purge is not supported in the legacy-global layout; the cluster was unregistered, its data kept")
            }
            try ClusterFiles.purge(paths: cluster.paths)
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
            storageLayout: configuration.storageLayout.name,
            openDatabases: await budget.openCount,
            resources: counters.snapshot,
            shuttingDown: isShuttingDown
        )
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
