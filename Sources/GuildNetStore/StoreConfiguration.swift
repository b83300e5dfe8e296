import GuildNetCore

/// Tunables of one cluster's SQLite store. Defaults are documented in docs/operations.md.
public struct StoreConfiguration: Sendable {
    /// How many times opening (with its health check) is tried before the store reports failure.
    public var openAttempts: Int = 5
    /// The wait between open attempts.
    public var openBackoff = Backoff(initial: .milliseconds(50), cap: .seconds(2), jitter: 0.5)
    /// How long a statement waits for another connection's lock before failing with `db_locked`.
    public var busyTimeout: Duration = .seconds(1)

    public init() {}
}

/// Tunables of the host-wide budget of open SQLite handles.
public struct DatabaseBudgetConfiguration: Sendable {
    /// The most cluster DBs open at once, host-wide; opening one more closes the least recently
    /// used idle handle first. Each open DB holds 3 file descriptors (db, -wal, -shm).
    public var maxOpenDatabases: Int = 128
    /// A handle unused for this long is closed by the sweeper and reopened on next use.
    public var idleTTL: Duration = .seconds(120)
    /// How often the sweeper looks for idle handles.
    public var sweepInterval: Duration = .seconds(15)

    public init() {}
}
