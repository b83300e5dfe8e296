import GuildNetCore
import Prometheus
import Synchronization

/// The host's one Prometheus registry; per-cluster series carry the label cluster_id and are removed when their cluster is destroyed.
///
/// Every per-cluster series goes through a catalog kept beside the registry, which guarantees what
/// swift-prometheus would otherwise enforce with a crash: one type and one help text per family,
/// valid metric and label names, no duplicate label names. A series is reference-counted, so two
/// handles of the same cluster (an old one still tearing down, a new one already created) never
/// remove each other's series.
///
/// Series registered directly on ``registry`` bypass the catalog: keep such names outside the
/// `hostapp_cluster_` prefix.
public final class HostMetrics: Sendable {
    /// The registry rendered by ``exposition()``.
    public let registry: PrometheusCollectorRegistry
    private let clustersActive: Gauge
    private let clustersRegistered: Counter
    private let clustersUnregistered: Counter
    private let databaseOpenFailures: Counter
    private let openFDs: Gauge
    private let residentMemory: Gauge
    private let supervisedTasks: Gauge
    private let tasksSource = LockedValue<(@Sendable () -> Int)?>(nil)
    private let catalog: LockedValue<Catalog>
    private let rejected = Atomic<Int>(0)

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var catalog = Catalog()
        func gauge(_ name: String, _ help: String) -> Gauge {
            catalog.families[name] = FamilyEntry(kind: .gauge, help: help, labeled: false, series: 1)
            return registry.makeGauge(descriptor: .exact(name, help: help))
        }
        func counter(_ name: String, _ help: String) -> Counter {
            catalog.families[name] = FamilyEntry(kind: .counter, help: help, labeled: false, series: 1)
            return registry.makeCounter(descriptor: .exact(name, help: help))
        }
        clustersActive = gauge(MetricFamily.clustersActive, MetricFamily.clustersActiveHelp)
        clustersRegistered = counter(MetricFamily.clustersRegistered, MetricFamily.clustersRegisteredHelp)
        clustersUnregistered = counter(MetricFamily.clustersUnregistered, MetricFamily.clustersUnregisteredHelp)
        databaseOpenFailures = counter(MetricFamily.dbOpenFailures, MetricFamily.dbOpenFailuresHelp)
        openFDs = gauge(MetricFamily.openFDs, MetricFamily.openFDsHelp)
        residentMemory = gauge(MetricFamily.residentMemory, MetricFamily.residentMemoryHelp)
        supervisedTasks = gauge(MetricFamily.supervisedTasks, MetricFamily.supervisedTasksHelp)
        // Host-wide families labelled by child only: reserved here so no cluster can claim the names.
        for (name, help) in [
            (MetricFamily.hostChildRestarts, MetricFamily.hostChildRestartsHelp), (MetricFamily.hostChildGiveUps, MetricFamily.hostChildGiveUpsHelp),
        ] {
            catalog.families[name] = FamilyEntry(kind: .counter, help: help, labeled: false, series: 0)
            for child in MetricFamily.knownChildren {
                _ = registry.makeCounter(descriptor: .exact(name, help: help), labels: [("child", child)])
            }
        }
        self.catalog = LockedValue(catalog)
    }

    /// Sets hostapp_clusters_active (gauge, no labels).
    public func setClustersActive(_ count: Int) {
        clustersActive.set(Int64(count))
    }

    /// hostapp_clusters_registered_total += 1 (a new cluster instance was created).
    public func clusterRegistered() {
        clustersRegistered.increment()
    }

    /// hostapp_clusters_unregistered_total += 1 (a cluster began its teardown).
    public func clusterUnregistered() {
        clustersUnregistered.increment()
    }

    /// hostapp_db_open_failures_total += 1 (a cluster DB could not be opened after its retries).
    public func databaseOpenFailed() {
        databaseOpenFailures.increment()
    }

    /// hostapp_child_restarts_total{child} += 1; survives the cluster's unregistration.
    public func childRestarted(_ child: String) {
        hostCounter(MetricFamily.hostChildRestarts, help: MetricFamily.hostChildRestartsHelp, child: child).increment()
    }

    /// hostapp_child_give_ups_total{child} += 1: a child exhausted its restart budget and stays failed.
    public func childGaveUp(_ child: String) {
        hostCounter(MetricFamily.hostChildGiveUps, help: MetricFamily.hostChildGiveUpsHelp, child: child).increment()
    }

    /// Where hostapp_supervised_tasks is read from at each scrape (the host's ``ResourceCounters``).
    public func observeSupervisedTasks(_ source: @escaping @Sendable () -> Int) {
        tasksSource.withLock { $0 = source }
    }

    /// Refreshes the process gauges (open FDs, RSS, supervised tasks); ``exposition()`` calls it.
    public func sampleProcess() {
        if let count = ProcessSample.openFileDescriptors() { openFDs.set(Int64(count)) }
        if let bytes = ProcessSample.residentBytes() { residentMemory.set(Int64(bytes)) }
        if let source = tasksSource.withLock({ $0 }) { supervisedTasks.set(Int64(source())) }
    }

    private func hostCounter(_ name: String, help: String, child: String) -> Counter {
        registry.makeCounter(descriptor: .exact(name, help: help), labels: [("child", child)])
    }

    /// Creates the metric handle of one cluster (registers nothing yet).
    public func makeClusterMetrics(for cluster: ClusterID) -> ClusterMetrics {
        ClusterMetrics(cluster: cluster, host: self)
    }

    /// Prometheus text exposition (format 0.0.4).
    public func exposition() -> [UInt8] {
        sampleProcess()
        return registry.emitToBuffer()
    }

    // MARK: Catalog (internal)

    /// How many registrations were refused (type or help conflict, invalid name); for tests and diagnostics.
    var rejectedRegistrations: Int { rejected.load(ordering: .relaxed) }

    /// The number of distinct per-cluster series currently registered through the catalog.
    var catalogSeriesCount: Int { catalog.withLock { $0.references.count } }

    /// Registers (or references again) the series `key`; `nil` when it conflicts with its family.
    func acquire(_ key: SeriesKey, kind: MetricKind, help: String) -> SeriesHandle? {
        let handle: SeriesHandle? = catalog.withLock { catalog in
            if let family = catalog.families[key.name] {
                guard family.kind == kind, family.help == help, family.labeled else { return nil }
            }
            let handle: SeriesHandle
            switch kind {
            case .counter: handle = .counter(registry.makeCounter(descriptor: .exact(key.name, help: help), labels: key.labels))
            case .gauge: handle = .gauge(registry.makeGauge(descriptor: .exact(key.name, help: help), labels: key.labels))
            }
            let references = catalog.references[key, default: 0]
            catalog.references[key] = references + 1
            if references == 0 {
                catalog.families[key.name, default: FamilyEntry(kind: kind, help: help, labeled: true, series: 0)].series += 1
            }
            return handle
        }
        if handle == nil { rejected.add(1, ordering: .relaxed) }
        return handle
    }

    /// Drops one reference to `key`; the last one removes the series (and its family when it was the last series).
    func release(_ key: SeriesKey, handle: SeriesHandle) {
        catalog.withLock { catalog in
            guard let references = catalog.references[key] else { return }
            if references > 1 {
                catalog.references[key] = references - 1
                return
            }
            catalog.references.removeValue(forKey: key)
            switch handle {
            case .counter(let counter): registry.unregisterCounter(counter)
            case .gauge(let gauge): registry.unregisterGauge(gauge)
            }
            if var family = catalog.families[key.name] {
                family.series -= 1
                catalog.families[key.name] = family.series > 0 ? family : nil
            }
        }
    }

    /// Counts a registration refused before reaching the catalog (invalid name or labels).
    func noteRejected() {
        rejected.add(1, ordering: .relaxed)
    }
}

/// Family names and help texts. A family's help text must be identical for all its series.
enum MetricFamily {
    static let clustersActive = "hostapp_clusters_active"
    static let clustersActiveHelp = "Clusters registered and not yet destroyed."
    static let dbOpen = "hostapp_cluster_db_open"
    static let dbOpenHelp = "Whether the cluster's SQLite handle is open (1) or closed (0)."
    static let lifecycleEvents = "hostapp_cluster_lifecycle_events_total"
    static let lifecycleEventsHelp = "Cluster lifecycle events by stable event code."
    static let childRestarts = "hostapp_cluster_child_restarts_total"
    static let childRestartsHelp = "Child service restarts after failures."
    static let clustersRegistered = "hostapp_clusters_registered_total"
    static let clustersRegisteredHelp = "Cluster instances created by cluster.register since the daemon started."
    static let clustersUnregistered = "hostapp_clusters_unregistered_total"
    static let clustersUnregisteredHelp = "Cluster instances whose teardown began (cluster.unregister) since the daemon started."
    static let dbOpenFailures = "hostapp_db_open_failures_total"
    static let dbOpenFailuresHelp = "Cluster databases that could not be opened after every retry."
    static let hostChildRestarts = "hostapp_child_restarts_total"
    static let hostChildRestartsHelp = "Child restarts after failures, all clusters, by child (kept after unregistration)."
    static let hostChildGiveUps = "hostapp_child_give_ups_total"
    static let hostChildGiveUpsHelp = "Children that exhausted their restart budget and stayed failed, all clusters, by child."
    static let openFDs = "hostapp_process_open_fds"
    static let openFDsHelp = "File descriptors open in the daemon process."
    static let residentMemory = "hostapp_process_resident_memory_bytes"
    static let residentMemoryHelp = "Resident set size of the daemon process in bytes."
    static let supervisedTasks = "hostapp_supervised_tasks"
    static let supervisedTasksHelp = "Supervised tasks running in the host (cluster lives and their children)."
    static let clusterState = "hostapp_cluster_state"
    static let clusterStateHelp = "1 for the cluster's current lifecycle state, 0 for the others."
    static let dbErrors = "hostapp_cluster_db_errors_total"
    static let dbErrorsHelp = "Failed operations on the cluster's database (open failures included)."
    /// Children every cluster has; their host-wide series exist from the start.
    static let knownChildren = ["store", "settings", "kube", "rethink", "forwards", "routes"]
}

enum MetricKind: Sendable, Equatable {
    case counter
    case gauge
}

/// One series: a family name and its full, ordered label set.
struct SeriesKey: Hashable, Sendable {
    let name: String
    let labels: [(String, String)]

    init(name: String, labels: [(String, String)]) {
        self.name = name
        self.labels = labels
    }

    static func == (lhs: SeriesKey, rhs: SeriesKey) -> Bool {
        lhs.name == rhs.name && lhs.labels.elementsEqual(rhs.labels, by: { $0.0 == $1.0 && $0.1 == $1.1 })
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        for (label, value) in labels {
            hasher.combine(label)
            hasher.combine(value)
        }
    }
}

enum SeriesHandle: Sendable {
    case counter(Counter)
    case gauge(Gauge)

    var kind: MetricKind {
        switch self {
        case .counter: .counter
        case .gauge: .gauge
        }
    }
}

private struct FamilyEntry {
    var kind: MetricKind
    var help: String
    /// `false` for host-wide series without labels (a family cannot mix both).
    var labeled: Bool
    var series: Int
}

private struct Catalog {
    var families: [String: FamilyEntry] = [:]
    var references: [SeriesKey: Int] = [:]
}

extension MetricNameDescriptor {
    /// A descriptor whose full name is exactly `name` (which must not be empty).
    static func exact(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
