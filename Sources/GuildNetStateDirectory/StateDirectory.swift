import GuildNetCore

/// The layout of a state directory: every path the daemon, `hostapp ctl` and the migration tools
/// agree on, in one place.
///
/// ```
/// <state-dir>/
///  ├─ hostapp.lock              StateDirectoryLock (flock, held by the daemon or a migration)
///  ├─ hostapp.sock              default control socket (mode 0600)
///  ├─ guildnet.sqlite           legacy host-wide DB (legacy-global layout, migration source)
///  ├─ backups/<timestamp>/      migration backups
///  ├─ audit/migrations.log      migration and rollback audit log
///  ├─ audit/admin.log           admin operations on cluster data (AuditLogFile)
///  └─ clusters/<id>/            ClusterPaths: local.db, settings.json, kubeconfig, cluster.json,
///                               registration.json (while registered)
/// ```
public struct StateDirectory: Sendable, Equatable {
    /// The root directory.
    public var root: String

    public init(_ root: String) {
        self.root = root
    }

    /// `clusters/`: one directory per cluster.
    public var clusters: String { root + "/clusters" }
    /// The advisory lock file (see ``StateDirectoryLock``).
    public var lock: String { root + "/hostapp.lock" }
    /// The default control socket.
    public var socket: String { root + "/hostapp.sock" }
    /// The legacy host-wide DB of the Go GuildNet app.
    public var legacyDatabase: String { root + "/" + Self.legacyDatabaseName }
    /// Where migration backups go by default.
    public var backups: String { root + "/backups" }
    /// Append-only audit logs.
    public var audit: String { root + "/audit" }
    /// The migration and rollback audit log.
    public var migrationAuditLog: String { audit + "/migrations.log" }
    /// The admin operations audit log (`cluster.register`, `cluster.unregister`, `settings.set`, …).
    public var adminAuditLog: String { audit + "/admin.log" }

    /// The files of one cluster.
    public func cluster(_ id: ClusterID) -> ClusterPaths {
        ClusterPaths(directory: clusters + "/" + id.key)
    }

    /// File name of the legacy host-wide DB.
    public static let legacyDatabaseName = "guildnet.sqlite"
    /// Mode of every directory the daemon creates.
    public static let directoryMode: FileMode = 0o700
    /// Mode of every file that may hold data or credentials.
    public static let privateFileMode: FileMode = 0o600
}
