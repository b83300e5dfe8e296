import Synchronization

/// Counters of what one host owns right now: cluster actors, supervised tasks, open DB handles.
/// Tests and `host.status` compare them before and after teardown to prove nothing leaked.
/// One instance per host, never global.
public final class ResourceCounters: Sendable {
    private let clusters = Atomic<Int>(0)
    private let tasks = Atomic<Int>(0)
    private let databases = Atomic<Int>(0)

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

    public var snapshot: Snapshot {
        Snapshot(
            clusterActors: clusters.load(ordering: .relaxed),
            supervisedTasks: tasks.load(ordering: .relaxed),
            openDatabases: databases.load(ordering: .relaxed)
        )
    }

    public struct Snapshot: Sendable, Equatable {
        public var clusterActors: Int
        public var supervisedTasks: Int
        public var openDatabases: Int

        public init(clusterActors: Int, supervisedTasks: Int, openDatabases: Int) {
            self.clusterActors = clusterActors
            self.supervisedTasks = supervisedTasks
            self.openDatabases = openDatabases
        }
    }
}
