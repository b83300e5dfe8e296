/// How `hostapp serve` brings back the clusters registered before it stopped (`--restore`).
///
/// Every registered cluster has a `clusters/<id>/registration.json` record; at start the host
/// lists each one in `cluster.list`, then:
/// - ``eager`` (the default) starts them all in the background, a few at a time, so after a
///   restart every cluster is supervised, probed and exporting metrics again as before it, and a
///   broken one shows up as `degraded` without anyone asking for it;
/// - ``lazy`` leaves them `idle` (no task, connection, DB handle or metric series) until the first
///   request that needs the cluster starts it, so thousands of registered clusters cost nothing
///   until used;
/// - ``off`` restores nothing (the records are kept; a later start with another mode restores them).
public enum RestoreMode: String, Sendable, CaseIterable {
    case eager
    case lazy
    case off
}

/// What ``HostActor/restore(_:)`` did.
public struct RestoreSummary: Sendable, Equatable {
    /// Clusters listed from their records.
    public var restored: Int
    /// Records that could not be used (logged with the reason).
    public var skipped: Int

    public init(restored: Int, skipped: Int) {
        self.restored = restored
        self.skipped = skipped
    }
}
