import GuildNetCore
import Logging

/// The host-wide budget of open SQLite handles: an LRU cap and an idle TTL.
///
/// It holds no connection itself: it only asks idle stores to close their own handle, so a
/// connection is never shared between clusters. One instance per host; its sweeper runs in the
/// host's task group (``run()``).
public actor DatabaseBudget {
    public nonisolated let configuration: DatabaseBudgetConfiguration
    private var open: [ObjectIdentifier: ClusterStore] = [:]
    private let logger: Logger
    private var evictions = 0

    public init(configuration: DatabaseBudgetConfiguration = .init(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Number of stores holding (or opening) a handle.
    public var openCount: Int { open.count }

    /// Handles closed to respect the cap since start.
    public var evictionCount: Int { evictions }

    /// Reserves a slot for `store`, first closing the least recently used idle handles while the
    /// cap is reached. The cap is soft: when every open handle is busy, the store opens anyway.
    func admit(_ store: ClusterStore) async {
        let id = ObjectIdentifier(store)
        if open[id] != nil { return }
        if open.count >= configuration.maxOpenDatabases {
            let candidates = open.values
                .filter { $0 !== store }
                .sorted { $0.usage.nanoseconds < $1.usage.nanoseconds }
            for candidate in candidates where open.count >= configuration.maxOpenDatabases {
                if await candidate.closeIfIdle(usedBefore: nil) {
                    evictions += 1
                }
            }
        }
        open[id] = store
    }

    /// Called by a store once its handle is closed.
    func release(_ store: ClusterStore) {
        open[ObjectIdentifier(store)] = nil
    }

    /// Closes every handle unused for longer than the idle TTL. Returns how many closed.
    @discardableResult
    public func sweep() async -> Int {
        let ttlNanos = Int64(configuration.idleTTL.seconds * 1e9)
        let threshold = UsageStamp.now() - ttlNanos
        var closed = 0
        for store in open.values where store.usage.nanoseconds < threshold {
            if await store.closeIfIdle(usedBefore: threshold) { closed += 1 }
        }
        if closed > 0 {
            logger.debug("closed \(closed) idle database handles", metadata: ["event": "db_idle_sweep"])
        }
        return closed
    }

    /// The sweeper: runs until cancelled.
    public func run() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: configuration.sweepInterval)
            } catch {
                return
            }
            await sweep()
        }
    }
}
