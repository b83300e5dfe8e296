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
    private let catalog: LockedValue<Catalog>
    private let rejected = Atomic<Int>(0)

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        self.clustersActive = registry.makeGauge(descriptor: .exact(MetricFamily.clustersActive, help: MetricFamily.clustersActiveHelp))
        var catalog = Catalog()
        catalog.families[MetricFamily.clustersActive] = FamilyEntry(
            kind: .gauge, help: MetricFamily.clustersActiveHelp, labeled: false, series: 1
        )
        self.catalog = LockedValue(catalog)
    }

    /// Sets hostapp_clusters_active (gauge, no labels).
    public func setClustersActive(_ count: Int) {
        clustersActive.set(Int64(count))
    }

    /// Creates the metric handle of one cluster (registers nothing yet).
    public func makeClusterMetrics(for cluster: ClusterID) -> ClusterMetrics {
        ClusterMetrics(cluster: cluster, host: self)
    }

    /// Prometheus text exposition (format 0.0.4).
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
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
