/// The lifecycle of one cluster: `registering → starting → ready | degraded → stopping → stopped`.
/// A cluster restored lazily at daemon start (`serve --restore lazy`) is `idle` until its first
/// request starts it (`idle → registering → …`).
public enum ClusterState: String, Sendable, Codable, CaseIterable {
    /// Registered (restored from its registration record) but not started: nothing runs for it.
    case idle
    case registering
    case starting
    /// Every child is running.
    case ready
    /// At least one child failed; it is being restarted, or gave up after its restart budget.
    case degraded
    case stopping
    case stopped

    /// Whether the cluster has finished starting (successfully or not).
    public var hasSettled: Bool {
        switch self {
        case .ready, .degraded, .stopping, .stopped: return true
        case .idle, .registering, .starting: return false
        }
    }
}

/// Stable lifecycle event codes, logged at INFO with `cluster_id` and counted in
/// `hostapp_cluster_lifecycle_events_total{cluster_id,event}`.
public enum LifecycleEvent: String, Sendable, CaseIterable {
    case create
    case start
    case ready
    case degraded
    case stop
    case destroy
    case childFailed = "child_failed"
    case childRestarted = "child_restarted"
    case childGaveUp = "child_gave_up"
}
