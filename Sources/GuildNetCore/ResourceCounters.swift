import Synchronization

/// Counters of what one host owns right now: cluster actors, their children still alive,
/// supervised tasks, open DB handles. Tests, `host.status` and `hostapp-stress` compare them
/// before and after teardown to prove nothing leaked. One instance per host, never global.
public final class ResourceCounters: Sendable {
    private let clusters = Atomic<Int>(0)
    private let tasks = Atomic<Int>(0)
    private let databases = Atomic<Int>(0)
    /// Cluster children, held weakly: one kept alive by a reference cycle after its cluster is gone
    /// shows as a count that does not return to its baseline.
    private let children = LockedValue<[WeakChild]>([])

    public init() {}

    public enum Kind: Sendable { case cluster, task, database }

    public func increment(_ kind: Kind) {
        switch kind {
        case .cluster: clusters.add(1, ordering: .relaxed)
        case .task: tasks.add(1, ordering: .relaxed)
        case .database: databases.add(1, ordering: .relaxed)
        }
    }

    public func decrement(_ kind: Kind) {
        switch kind {
        case .cluster: clusters.subtract(1, ordering: .relaxed)
        case .task: tasks.subtract(1, ordering: .relaxed)
        case .database: databases.subtract(1, ordering: .relaxed)
        }
    }

    /// Counts `child` in ``Snapshot/clusterChildren`` until it is freed (it is held weakly); a
    /// child that is a value, not an object, cannot outlive anything and is not counted.
    public func track(_ child: any ClusterChild) {
        guard let child = child as? any ClusterChild & AnyObject else { return }
        children.withLock { children in
            children.removeAll { $0.child == nil }
            children.append(WeakChild(child: child))
        }
    }

    public var snapshot: Snapshot {
        Snapshot(
            clusterActors: clusters.load(ordering: .relaxed),
            supervisedTasks: tasks.load(ordering: .relaxed),
            openDatabases: databases.load(ordering: .relaxed),
            clusterChildren: children.withLock { children in children.count { $0.child != nil } }
        )
    }

    private struct WeakChild: Sendable {
        weak var child: (any ClusterChild & AnyObject)?
    }

    public struct Snapshot: Sendable, Equatable {
        public var clusterActors: Int
        public var supervisedTasks: Int
        public var openDatabases: Int
        /// Children of cluster actors (store, settings, kube, …) not yet freed.
        public var clusterChildren: Int

        public init(clusterActors: Int, supervisedTasks: Int, openDatabases: Int, clusterChildren: Int = 0) {
            self.clusterActors = clusterActors
            self.supervisedTasks = supervisedTasks
            self.openDatabases = openDatabases
            self.clusterChildren = clusterChildren
        }
    }
}
