import GuildNetCore
import Prometheus

/// One cluster's series, all labelled cluster_id=<ClusterID.key>. A ClusterChild with childID "metrics".
///
/// Series are created on first use and live until ``unregisterAll()`` (or until the handle is
/// released without it, as a safety net against leaked series). After ``unregisterAll()`` every
/// method is a no-op: returned handles are detached and never exported.
public final class ClusterMetrics: ClusterChild {
    /// The cluster whose series these are.
    public let cluster: ClusterID
    private let host: HostMetrics
    private let state = LockedValue(State())

    private struct State {
        var closed = false
        var series: [SeriesKey: Tracked] = [:]
    }

    private struct Tracked {
        var handle: SeriesHandle
        var help: String
    }

    init(cluster: ClusterID, host: HostMetrics) {
        self.cluster = cluster
        self.host = host
    }

    deinit {
        unregisterAll()
    }

    /// The child id within the cluster: `metrics`.
    public var childID: String { "metrics" }

    /// Registers the base series: hostapp_cluster_db_open{cluster_id} (gauge, 0 until the store reports).
    /// Restart series are created on demand (``registerChild(_:)``, ``childRestarted(_:)``).
    public func start() async throws {
        _ = gauge(MetricFamily.dbOpen, help: MetricFamily.dbOpenHelp, labels: [])
        _ = counter(MetricFamily.dbErrors, help: MetricFamily.dbErrorsHelp, labels: [])
    }

    /// No-op: series live until ``unregisterAll()``, so counters survive a restart of this child.
    public func stop() async {}

    /// `["series": n]`, the number of series this cluster currently has.
    public func details() async -> [String: JSONValue] {
        ["series": .int(Int64(seriesCount))]
    }

    /// hostapp_cluster_lifecycle_events_total{cluster_id,event} += 1 (series created on first use).
    public func lifecycle(_ event: LifecycleEvent) {
        counter(MetricFamily.lifecycleEvents, help: MetricFamily.lifecycleEventsHelp, labels: [("event", event.rawValue)])
            .increment()
    }

    /// hostapp_cluster_child_restarts_total{cluster_id,child} += 1, and the host-wide
    /// hostapp_child_restarts_total{child} (which outlives the cluster).
    public func childRestarted(_ child: String) {
        counter(MetricFamily.childRestarts, help: MetricFamily.childRestartsHelp, labels: [("child", child)])
            .increment()
        host.childRestarted(child)
    }

    /// hostapp_child_give_ups_total{child} += 1 (host-wide; the cluster's own record is its
    /// `child_gave_up` lifecycle event).
    public func childGaveUp(_ child: String) {
        host.childGaveUp(child)
    }

    /// hostapp_cluster_state{cluster_id,state}: 1 for `state`, 0 for every other state.
    public func setState(_ state: ClusterState) {
        for candidate in ClusterState.allCases {
            gauge(MetricFamily.clusterState, help: MetricFamily.clusterStateHelp, labels: [("state", candidate.rawValue)])
                .set(candidate == state ? Int64(1) : Int64(0))
        }
    }

    /// hostapp_cluster_db_errors_total{cluster_id} += 1 (one failed operation on the cluster's DB).
    public func databaseError() {
        counter(MetricFamily.dbErrors, help: MetricFamily.dbErrorsHelp, labels: []).increment()
    }

    /// hostapp_db_open_failures_total += 1 (host-wide): the cluster's DB could not be opened after every retry.
    public func databaseOpenFailed() {
        host.databaseOpenFailed()
    }

    /// Creates the restarts series for `child` at 0 so it shows before the first restart.
    public func registerChild(_ child: String) {
        _ = counter(MetricFamily.childRestarts, help: MetricFamily.childRestartsHelp, labels: [("child", child)])
    }

    /// hostapp_cluster_db_open{cluster_id}: 1 when open, 0 when closed.
    public func setDatabaseOpen(_ open: Bool) {
        gauge(MetricFamily.dbOpen, help: MetricFamily.dbOpenHelp, labels: []).set(open ? Int64(1) : Int64(0))
    }

    /// For other subsystems: a counter with `name`, `help` and extra `labels` (cluster_id is added first,
    /// the others follow sorted by name); tracked so ``unregisterAll()`` removes it. The same name and
    /// labels return the same series.
    ///
    /// A registration that cannot be exported safely returns a detached counter that is never exported:
    /// an invalid metric or label name, a label named `cluster_id` or given twice, a name already used
    /// with another type or help text, or any call after ``unregisterAll()``.
    public func counter(_ name: String, help: String, labels: [(String, String)]) -> Counter {
        switch series(name, kind: .counter, help: help, labels: labels) {
        case .counter(let counter)?: return counter
        case .gauge?, nil: return PrometheusCollectorRegistry().makeCounter(descriptor: .exact("detached", help: ""))
        }
    }

    /// For other subsystems: a gauge with `name`, `help` and extra `labels`; same rules as
    /// ``counter(_:help:labels:)``.
    public func gauge(_ name: String, help: String, labels: [(String, String)]) -> Gauge {
        switch series(name, kind: .gauge, help: help, labels: labels) {
        case .gauge(let gauge)?: return gauge
        case .counter?, nil: return PrometheusCollectorRegistry().makeGauge(descriptor: .exact("detached", help: ""))
        }
    }

    /// Removes every series this cluster created; afterwards every method is a no-op (never re-registers). Idempotent.
    public func unregisterAll() {
        state.withLock { state in
            guard !state.closed else { return }
            state.closed = true
            for (key, tracked) in state.series {
                host.release(key, handle: tracked.handle)
            }
            state.series.removeAll()
        }
    }

    /// The number of series this cluster currently has registered.
    public var seriesCount: Int {
        state.withLock { $0.series.count }
    }

    // MARK: Private

    private func series(_ name: String, kind: MetricKind, help: String, labels: [(String, String)]) -> SeriesHandle? {
        guard let key = seriesKey(name, labels: labels) else {
            host.noteRejected()
            return nil
        }
        // Registration happens under this cluster's lock so that a concurrent unregisterAll() either
        // sees the new series (and removes it) or has already closed the handle (and nothing is registered).
        return state.withLock { state -> SeriesHandle? in
            guard !state.closed else { return nil }
            if let existing = state.series[key] {
                guard existing.handle.kind == kind, existing.help == help else {
                    host.noteRejected()
                    return nil
                }
                return existing.handle
            }
            guard let handle = host.acquire(key, kind: kind, help: help) else { return nil }
            state.series[key] = Tracked(handle: handle, help: help)
            return handle
        }
    }

    /// The full label set: cluster_id first, then the extra labels sorted by name; `nil` when invalid.
    private func seriesKey(_ name: String, labels: [(String, String)]) -> SeriesKey? {
        guard PrometheusNames.isValidMetricName(name) else { return nil }
        var names: Set<String> = ["cluster_id"]
        for (label, _) in labels {
            guard PrometheusNames.isValidLabelName(label), names.insert(label).inserted else { return nil }
        }
        let extra = labels.sorted { $0.0 < $1.0 }
        return SeriesKey(name: name, labels: [("cluster_id", cluster.key)] + extra)
    }
}

/// Name rules of the Prometheus data model.
enum PrometheusNames {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    static func isValidMetricName(_ name: String) -> Bool {
        isValid(name, allowColon: true)
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with the reserved `__`.
    static func isValidLabelName(_ name: String) -> Bool {
        isValid(name, allowColon: false) && !name.hasPrefix("__")
    }

    private static func isValid(_ name: String, allowColon: Bool) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty else { return false }
        for (index, byte) in bytes.enumerated() {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"):
                continue
            case UInt8(ascii: ":") where allowColon:
                continue
            case UInt8(ascii: "0")...UInt8(ascii: "9") where index > 0:
                continue
            default:
                return false
            }
        }
        return true
    }
}
