import Dispatch
import Foundation
import GRDB
import GuildNetCore
import Logging

/// One cluster's SQLite database at `<state-dir>/clusters/<id>/local.db`, a child of its ClusterActor.
///
/// - The connection is never shared: each store owns one `DatabaseQueue` (one SQLite connection, WAL).
/// - Opening runs the schema migrations and a health check, retried with capped backoff
///   (``StoreConfiguration/openAttempts``); then the store reports the error and the cluster degrades.
/// - The handle is closed when idle (by the host's ``DatabaseBudget``) and reopened lazily on next use.
/// - ``stop()`` closes the connection: no file descriptor or lock outlives the cluster.
/// - Blocking SQLite work runs on GRDB's own queue (and opening on a Dispatch thread), never on the
///   Swift concurrency pool, so a locked DB in one cluster cannot starve the others.
public actor ClusterStore: ClusterChild {
    public nonisolated let childID = "store"
    public nonisolated let cluster: ClusterID
    /// Path of `local.db`.
    public nonisolated let path: String
    nonisolated let usage = UsageStamp()

    private let configuration: StoreConfiguration
    private let budget: DatabaseBudget
    private let counters: ResourceCounters
    private let onOpenChange: @Sendable (Bool) -> Void
    private let onError: @Sendable (HostError, Bool) -> Void
    private let logger: Logger

    private enum Handle {
        case closed
        case opening([CheckedContinuation<DatabaseQueue, any Error>])
        case open(DatabaseQueue)
    }

    private var handle: Handle = .closed
    private var pendingPuts: [PendingPut] = []
    private var drainWaiters: [CheckedContinuation<Void, Never>] = []
    private var flushingPuts = false
    private var inFlight = 0
    private var stopped = false
    private var opens = 0
    private var lastError: HostError?
    /// Why the last open failed; cleared by a successful open.
    private var openFailure: HostError?

    /// - Parameters:
    ///   - onOpenChange: told `true` when the handle opens and `false` when it closes (drives the
    ///     `hostapp_cluster_db_open` gauge).
    ///   - onError: told about each failed operation (`false`) and each open that failed after every
    ///     retry (`true`); drives `hostapp_cluster_db_errors_total` and `hostapp_db_open_failures_total`.
    public init(
        cluster: ClusterID,
        path: String,
        configuration: StoreConfiguration,
        budget: DatabaseBudget,
        counters: ResourceCounters,
        logger: Logger,
        onOpenChange: @escaping @Sendable (Bool) -> Void = { _ in },
        onError: @escaping @Sendable (HostError, Bool) -> Void = { _, _ in }
    ) {
        self.cluster = cluster
        self.path = path
        self.configuration = configuration
        self.budget = budget
        self.counters = counters
        self.logger = logger
        self.onOpenChange = onOpenChange
        self.onError = onError
    }

    // MARK: ClusterChild

    public func start() async throws {
        stopped = false
        usage.touch()
        _ = try await ensureOpen()
    }

    public func stop() async {
        stopped = true
        // Let operations already running finish on the open handle; new ones are refused.
        if inFlight > 0 {
            await withCheckedContinuation { drainWaiters.append($0) }
        }
        switch handle {
        case .open(let queue):
            await close(queue)
        case .opening, .closed:
            break  // an opener in progress sees `stopped` and closes what it opened
        }
    }

    public func details() async -> [String: JSONValue] {
        var details: [String: JSONValue] = [
            "path": .string(path),
            "open": .bool(isOpen),
            "opens": .int(Int64(opens)),
            "schema": .string(StoreSchema.latestVersion),
        ]
        if let lastError { details["last_error"] = .string(lastError.description) }
        return details
    }

    /// Whether the SQLite handle is open right now.
    public var isOpen: Bool {
        if case .open = handle { return true }
        return false
    }

    // MARK: Key-value operations

    /// Writes `value` under `key`, keeping the original creation time on overwrite.
    ///
    /// Concurrent puts are group-committed: the first caller becomes the flusher and writes every
    /// put queued meanwhile in one transaction, in arrival order; each caller returns once the
    /// transaction holding its write has committed.
    @discardableResult
    public func put(_ key: String, _ value: JSONValue) async throws -> StoredItem {
        try checkUsable()
        inFlight += 1
        defer { operationFinished() }
        usage.touch()
        let write = PendingPut.Write(key: key, text: value.jsonString, now: Date().timeIntervalSince1970)
        let waiter = PendingPut(write)
        pendingPuts.append(waiter)
        if !flushingPuts {
            flushingPuts = true
            while !pendingPuts.isEmpty {
                let batch = pendingPuts
                pendingPuts = []
                let outcome = await writeBatch(batch.map(\.write))
                for (index, pending) in batch.enumerated() {
                    pending.deliver(outcome.map { $0[index] })
                }
            }
            flushingPuts = false
        }
        let created: Double
        if let result = waiter.result {
            created = try result.get()
        } else {
            do {
                created = try await withCheckedThrowingContinuation { waiter.continuation = $0 }
            } catch {
                throw HostError.wrapping(error, as: .dbError)
            }
        }
        return StoredItem(key: key, value: value, createdAt: created, updatedAt: write.now)
    }

    /// Writes a batch of puts in one transaction; returns each key's creation time.
    private func writeBatch(_ writes: [PendingPut.Write]) async -> Result<[Double], HostError> {
        do {
            let queue = try await ensureOpen()
            return .success(
                try await queue.write { db in
                    let statement = try db.cachedStatement(
                        sql: """
                            INSERT INTO kv(key, value, created_at, updated_at) VALUES (?, ?, ?, ?)
                            ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                            RETURNING created_at
                            """)
                    var created: [Double] = []
                    created.reserveCapacity(writes.count)
                    for write in writes {
                        created.append(try Double.fetchOne(statement, arguments: [write.key, write.text, write.now, write.now]) ?? write.now)
                    }
                    return created
                })
        } catch {
            let mapped = HostError.store(error, "put on \(cluster.key)")
            if mapped.code != .clusterStopping { lastError = mapped }
            return .failure(mapped)
        }
    }

    public func get(_ key: String) async throws -> StoredItem? {
        let row = try await withDatabase("get") { queue in
            try await queue.read { db in
                try Row.fetchOne(db, sql: "SELECT key, value, created_at, updated_at FROM kv WHERE key = ?", arguments: [key])
                    .map(RawItem.init)
            }
        }
        guard let row else { return nil }
        return try row.decoded()
    }

    /// Deletes `key`; returns whether it existed.
    public func delete(_ key: String) async throws -> Bool {
        try await withDatabase("delete") { queue in
            try await queue.write { db in
                try db.execute(sql: "DELETE FROM kv WHERE key = ?", arguments: [key])
                return db.changesCount > 0
            }
        }
    }

    /// Keys starting with `prefix`, in key order, strictly after `after` when given.
    public func list(prefix: String, after: String?, limit: Int) async throws -> [StoredItem] {
        let upper = prefix + "\u{10FFFF}"
        let rows = try await withDatabase("list") { queue in
            try await queue.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT key, value, created_at, updated_at FROM kv
                        WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?
                        """,
                    arguments: [prefix, upper, after ?? "", limit]
                ).map(RawItem.init)
            }
        }
        var items: [StoredItem] = []
        items.reserveCapacity(rows.count)
        for row in rows { items.append(try row.decoded()) }
        return items
    }

    /// Number of keys stored.
    public func count() async throws -> Int {
        try await withDatabase("count") { queue in
            try await queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM kv") ?? 0 }
        }
    }

    // MARK: Idle handling (called by DatabaseBudget)

    /// Closes the handle if no operation is running and it has not been used since `usedBefore`
    /// (nanoseconds on ``UsageStamp/now()``; `nil` = regardless of age). Returns whether it closed.
    func closeIfIdle(usedBefore: Int64?) async -> Bool {
        guard case .open(let queue) = handle, inFlight == 0 else { return false }
        if let usedBefore, usage.nanoseconds >= usedBefore { return false }
        logger.debug("closing idle database handle", metadata: ["event": "db_idle_close"])
        await close(queue)
        return true
    }

    // MARK: Internals

    private func withDatabase<T: Sendable>(
        _ operation: String,
        _ body: (DatabaseQueue) async throws -> T
    ) async throws -> T {
        do {
            try checkUsable()
        } catch {
            if error.code != .clusterStopping { onError(error, false) }
            throw error
        }
        inFlight += 1
        defer { operationFinished() }
        usage.touch()
        do {
            let queue = try await ensureOpen()
            return try await body(queue)
        } catch {
            let mapped = HostError.store(error, "\(operation) on \(cluster.key)")
            if mapped.code != .clusterStopping {
                lastError = mapped
                onError(mapped, false)
            }
            throw mapped
        }
    }

    private func operationFinished() {
        inFlight -= 1
        if inFlight == 0 && !drainWaiters.isEmpty {
            let waiters = drainWaiters
            drainWaiters = []
            for waiter in waiters { waiter.resume() }
        }
    }

    /// Throws when the store was stopped: by teardown, or by its supervisor after failing to open.
    private func checkUsable() throws(HostError) {
        guard !stopped else {
            if let openFailure {
                // Stopped by its supervisor after failing to open, not by teardown.
                throw HostError(.dbUnavailable, "database of \(cluster.key) is unavailable: \(openFailure.message)")
            }
            throw HostError(.clusterStopping, "cluster \(cluster.key) is stopping; its database is closed")
        }
    }

    private func ensureOpen() async throws -> DatabaseQueue {
        switch handle {
        case .open(let queue):
            return queue
        case .opening:
            return try await withCheckedThrowingContinuation { continuation in
                if case .opening(var waiters) = handle {
                    waiters.append(continuation)
                    handle = .opening(waiters)
                } else if case .open(let queue) = handle {
                    continuation.resume(returning: queue)
                } else {
                    continuation.resume(throwing: HostError(.dbUnavailable, "database of \(cluster.key) closed while opening"))
                }
            }
        case .closed:
            handle = .opening([])
            let result: Result<DatabaseQueue, HostError>
            do {
                result = .success(try await openWithRetry())
            } catch {
                result = .failure(HostError.store(error, "open \(cluster.key) database"))
            }
            // Only this opener moves the handle out of `.opening`, so the waiters are still here.
            var waiters: [CheckedContinuation<DatabaseQueue, any Error>] = []
            if case .opening(let queued) = handle { waiters = queued }
            switch result {
            case .success(let queue) where stopped:
                handle = .open(queue)
                await close(queue)
                let error = HostError(.clusterStopping, "cluster \(cluster.key) stopped while its database was opening")
                waiters.forEach { $0.resume(throwing: error) }
                throw error
            case .success(let queue):
                openFailure = nil
                handle = .open(queue)
                waiters.forEach { $0.resume(returning: queue) }
                return queue
            case .failure(let error):
                handle = .closed
                lastError = error
                openFailure = error
                waiters.forEach { $0.resume(throwing: error) }
                throw error
            }
        }
    }

    private func openWithRetry() async throws -> DatabaseQueue {
        await budget.admit(self)
        var attempt = 0
        while true {
            do {
                let queue = try await Self.openOffPool(path: path, configuration: configuration)
                opens += 1
                counters.increment(.database)
                onOpenChange(true)
                if attempt > 0 {
                    logger.info("database opened after \(attempt + 1) attempts", metadata: ["event": "db_open_recovered"])
                }
                return queue
            } catch {
                let mapped = HostError.store(error, "open \(path)")
                attempt += 1
                guard attempt < configuration.openAttempts, !stopped, !Task.isCancelled else {
                    await budget.release(self)
                    logger.error(
                        "database open failed after \(attempt) attempts: \(mapped)",
                        metadata: ["event": "db_open_failed", "code": .string(mapped.code.rawValue)])
                    onError(mapped, true)
                    throw mapped
                }
                logger.warning("database open failed (attempt \(attempt)): \(mapped)", metadata: ["event": "db_open_retry"])
                try await Task.sleep(for: configuration.openBackoff.delay(attempt: attempt - 1))
            }
        }
    }

    private func close(_ queue: DatabaseQueue) async {
        do {
            try queue.close()
        } catch {
            logger.error("closing database failed: \(HostError.store(error, "close"))", metadata: ["event": "db_close_failed"])
        }
        handle = .closed
        counters.decrement(.database)
        onOpenChange(false)
        await budget.release(self)
    }

    /// Opens, migrates and health-checks the database on a Dispatch thread: these calls block on
    /// file I/O and SQLite locks and must not occupy a Swift concurrency thread.
    private static func openOffPool(path: String, configuration: StoreConfiguration) async throws -> DatabaseQueue {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result { try openBlocking(path: path, configuration: configuration) })
            }
        }
    }

    private static func openBlocking(path: String, configuration: StoreConfiguration) throws -> DatabaseQueue {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(configuration.busyTimeout.seconds)
        config.label = "guildnet.store"
        let queue = try DatabaseQueue(path: path, configuration: config)
        do {
            chmod(path, 0o600)
            try StoreSchema.migrator.migrate(queue)
            try queue.read { db in
                _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master")
                _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM (SELECT key FROM kv LIMIT 1)")
            }
            return queue
        } catch {
            try? queue.close()
            throw error
        }
    }
}

/// A row as read from SQLite, decoded outside the database queue.
struct RawItem: Sendable {
    var key: String
    var value: String
    var createdAt: Double
    var updatedAt: Double

    init(_ row: Row) {
        key = row["key"]
        value = row["value"]
        createdAt = row["created_at"]
        updatedAt = row["updated_at"]
    }

    func decoded() throws(HostError) -> StoredItem {
        do {
            let value = try JSONParser.parse(self.value)
            return StoredItem(key: key, value: value, createdAt: createdAt, updatedAt: updatedAt)
        } catch {
            throw HostError(.dbCorrupt, "stored value of key \(String(reflecting: key)) is not valid JSON")
        }
    }
}

/// One queued put of the group commit, and where its outcome goes. Only touched on the store actor.
final class PendingPut {
    struct Write: Sendable {
        var key: String
        var text: String
        var now: Double
    }

    let write: Write
    /// Set when the outcome arrives before the caller suspended (the flusher's own put).
    var result: Result<Double, HostError>?
    var continuation: CheckedContinuation<Double, any Error>?

    init(_ write: Write) { self.write = write }

    func deliver(_ outcome: Result<Double, HostError>) {
        if let continuation {
            self.continuation = nil
            continuation.resume(with: outcome.mapError { $0 as any Error })
        } else {
            result = outcome
        }
    }
}
