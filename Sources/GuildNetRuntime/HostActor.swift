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
        /// Restored from its registration record, not started yet (`serve --restore lazy`).
        case idle(ClusterID, context: String?)
        case active(ClusterActor)
        case stopping(ClusterActor)

        /// The running instance; `nil` while idle.
        var cluster: ClusterActor? {
            switch self {
            case .idle: nil
            case .active(let cluster), .stopping(let cluster): cluster
            }
        }

        var id: ClusterID {
            switch self {
            case .idle(let id, _): id
            case .active(let cluster), .stopping(let cluster): cluster.id
            }
        }
    }

    private var entries: [String: Entry] = [:]
    /// The host-wide settings layers now (``HostConfiguration/settings`` until a reload).
    private var hostSettings: HostSettingsSources
    /// Every cluster's ``ClusterActor/run()`` is a child task of ``run()`` through this.
    private let clusterTasks = TaskSpawner()
    /// Returns freed heap to the OS after unregistrations (`nil` when turned off).
    public nonisolated let memoryReturner: FreedMemoryReturner?
    private let shutdownFlag = Atomic<Bool>(false)
    private var runFinished = false

    public init(configuration: HostConfiguration) {
        var configuration = configuration
        if configuration.settingsWatchHub == nil { configuration.settingsWatchHub = FileWatchHub() }
        self.configuration = configuration
        self.logger = configuration.logger
        self.budget = DatabaseBudget(configuration: configuration.databaseBudget, logger: configuration.logger)
        self.hostSettings = configuration.settings
        self.memoryReturner = configuration.memoryTrimQuietPeriod.map { FreedMemoryReturner(quietPeriod: $0, logger: configuration.logger) }
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
        // The thread children (kubectl proxy) are forked from exists before any baseline is taken.
        try? await ChildProcessLauncher.prepare()
        await onStarted()  // `host_ready` never precedes `host_start`
        let budget = self.budget
        clusterTasks.spawn { await budget.run() }
        if let hub = configuration.settingsWatchHub { clusterTasks.spawn { await hub.run() } }
        if let memoryReturner { clusterTasks.spawn { await memoryReturner.run() } }
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
        let clusters = entries.values.compactMap(\.cluster)
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
        if case .idle(let idle, _)? = entries[id.key] {
            guard idle.name == id.name else { throw Self.collision(id, idle) }
            _ = try startIdle(id.key)
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
        if configuration.persistsRegistrations {
            do {
                try await Self.writeRecord(ClusterRegistration(id, context: request.context), configuration: configuration)
                // An unregister that ran meanwhile removed a record not yet written: remove it now.
                guard case .active(let same)? = entries[id.key], same === cluster else {
                    try await Self.removeRecord(id, configuration: configuration)
                    throw HostError(.clusterStopping, "cluster \(String(reflecting: id.name)) was unregistered while it registered")
                }
            } catch {
                // Not registered after all: the cluster stops and the caller sees why.
                if case .active(let same)? = entries[id.key], same === cluster {
                    entries[id.key] = .stopping(cluster)
                    publishActiveCount()
                }
                cluster.requestStop()
                throw error
            }
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

    /// The running cluster registered under `name`; an `idle` (lazily restored) cluster is started
    /// first, so the caller may find it still starting.
    /// - Throws: `cluster_not_found`, `cluster_stopping`, `cluster_id_collision`, `invalid_cluster_name`.
    public func cluster(named name: String) throws -> ClusterActor {
        let id = try ClusterID(name: name)
        switch entries[id.key] {
        case .idle(let idle, _)?:
            guard idle.name == id.name else { throw Self.collision(id, idle) }
            return try startIdle(id.key)
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
        guard entry.id.name == id.name else { throw Self.collision(id, entry.id) }
        if case .active = entry, configuration.persistsRegistrations {
            // The record goes first: once this returns, a restart no longer restores the cluster.
            try await Self.removeRecord(id, configuration: configuration)
        }
        guard let cluster = entry.cluster else {
            // Idle: nothing runs; forgetting the entry and its record is the whole teardown.
            var context: String?
            if case .idle(_, let stored) = entry { context = stored }
            entries[id.key] = nil
            if configuration.persistsRegistrations {
                do {
                    try await Self.removeRecord(id, configuration: configuration)
                } catch {
                    if entries[id.key] == nil { entries[id.key] = .idle(id, context: context) }
                    throw error
                }
            }
            if purge { try await configuration.storage.purge(id) }
            return UnregisterResult(cluster: id, purged: purge, teardownSeconds: 0)
        }
        if case .active(let same)? = entries[id.key], same === cluster {
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
        memoryReturner?.clusterReleased()
        if purge {
            // Off the actor: `ClusterStorage.purge` is nonisolated and async.
            try await configuration.storage.purge(id)
        }
        return UnregisterResult(cluster: id, purged: purge, teardownSeconds: began.duration(to: clock.now).seconds)
    }

    /// Every registered cluster (including those stopping), sorted by key.
    public func list() -> [ClusterSummary] {
        entries.values
            .map { ClusterSummary(id: $0.id, state: $0.cluster?.state ?? .idle) }
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
            memoryTrim: memoryReturner.map { MemoryTrimStatus(pending: $0.isTrimPending, trims: $0.trimCount) },
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

    // MARK: Restore

    /// Lists every cluster that has a registration record (see ``RestoreMode``): each becomes an
    /// `idle` entry, and with ``RestoreMode/eager`` a host task then starts them, a few at a time.
    /// Records that cannot be used are logged (`registration_skipped`) and left on disk. Call it
    /// once, from ``run(onStarted:)``'s `onStarted`, before clients connect.
    public func restore(_ mode: RestoreMode) async -> RestoreSummary {
        guard mode != .off else { return RestoreSummary(restored: 0, skipped: 0) }
        let scan = await Self.scanRecords(stateDirectory: configuration.stateDirectory)
        for skipped in scan.skipped {
            logger.warning(
                "registration not restored: \(skipped.reason)", metadata: ["event": "registration_skipped", "directory": .string(skipped.directory)])
        }
        var keys: [String] = []
        for record in scan.registrations {
            guard let id = try? ClusterID(name: record.name), entries[id.key] == nil else { continue }
            entries[id.key] = .idle(id, context: record.context)
            keys.append(id.key)
        }
        logger.info(
            "clusters restored",
            metadata: [
                "event": "clusters_restored", "mode": .string(mode.rawValue), "clusters": .stringConvertible(keys.count),
                "skipped": .stringConvertible(scan.skipped.count),
            ])
        if mode == .eager && !keys.isEmpty {
            let restored = keys
            clusterTasks.spawn { await self.startRestored(restored) }
        }
        return RestoreSummary(restored: keys.count, skipped: scan.skipped.count)
    }

    /// How many restored clusters ``RestoreMode/eager`` starts at once.
    static let eagerRestoreWidth = 8

    /// Starts the idle clusters `keys`, ``eagerRestoreWidth`` at a time, each waited for until settled.
    private func startRestored(_ keys: [String]) async {
        let startTimeout = configuration.startTimeout
        await withTaskGroup(of: Void.self) { group in
            var pending = keys[...]
            func startNext() -> Bool {
                guard !isShuttingDown, let key = pending.popFirst() else { return false }
                group.addTask {
                    guard let cluster = try? await self.startIdleIfStill(key) else { return }
                    _ = await cluster.waitUntilSettled(timeout: startTimeout)
                }
                return true
            }
            for _ in 0..<Self.eagerRestoreWidth where startNext() {}
            while await group.next() != nil { _ = startNext() }
        }
    }

    /// Starts `key` if it is still idle (a request may have started or unregistered it meanwhile).
    private func startIdleIfStill(_ key: String) throws -> ClusterActor? {
        guard case .idle? = entries[key] else { return nil }
        return try startIdle(key)
    }

    /// Turns the idle entry `key` into a running cluster (its kubeconfig and settings come from
    /// its directory, as stored at registration).
    private func startIdle(_ key: String) throws -> ClusterActor {
        guard case .idle(let id, let context)? = entries[key] else {
            throw HostError(.clusterNotFound, "no idle cluster with id \(key)")
        }
        guard !isShuttingDown else { throw HostError(.hostShuttingDown, "the host is shutting down") }
        var configuration = self.configuration
        configuration.settings = hostSettings
        let cluster = ClusterActor(
            id: id, registration: ClusterActor.Registration(context: context, kubeconfig: nil, settings: nil),
            configuration: configuration, budget: budget, counters: counters)
        entries[key] = .active(cluster)
        publishActiveCount()
        logger.info("starting restored cluster", metadata: ["event": "cluster_restore_start", "cluster_id": .string(key)])
        guard clusterTasks.spawn({ await self.supervise(cluster) }) else {
            entries[key] = .idle(id, context: context)
            publishActiveCount()
            throw HostError(.hostShuttingDown, "the host is shutting down")
        }
        return cluster
    }

    private nonisolated static func scanRecords(stateDirectory: String) async -> ClusterRegistrationScan {
        ClusterRegistration.all(in: StateDirectory(stateDirectory))
    }

    /// Off the actor: an fsync must not hold up other clusters' requests.
    private nonisolated static func writeRecord(_ record: ClusterRegistration, configuration: HostConfiguration) async throws {
        guard let id = try? ClusterID(name: record.name) else { return }
        try record.write(to: StateDirectory(configuration.stateDirectory).cluster(id))
    }

    private nonisolated static func removeRecord(_ id: ClusterID, configuration: HostConfiguration) async throws {
        try ClusterRegistration.remove(StateDirectory(configuration.stateDirectory).cluster(id))
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
    /// The freed-memory trim (``FreedMemoryReturner``); `nil` when it is off.
    public var memoryTrim: MemoryTrimStatus?
    public var shuttingDown: Bool
}

/// Where the freed-memory trim stands.
public struct MemoryTrimStatus: Sendable {
    /// An unregistration happened and its trim has not run yet.
    public var pending: Bool
    /// Trims done since the host started.
    public var trims: Int
}
