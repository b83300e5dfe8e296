import GRDB

/// The versioned schema of a cluster's `local.db`. Migrations are append-only: never edit a
/// registered one, add the next. The migration tool creates target DBs with this same migrator.
public enum StoreSchema {
    public static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1_kv") { db in
            try db.execute(
                sql: """
                    CREATE TABLE kv (
                        key TEXT PRIMARY KEY NOT NULL,
                        value TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL
                    ) WITHOUT ROWID
                    """)
        }
        migrator.registerMigration("v2_meta") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (
                        name TEXT PRIMARY KEY NOT NULL,
                        value TEXT NOT NULL
                    ) WITHOUT ROWID
                    """)
        }
        return migrator
    }

    /// The identifier of the newest migration, reported by `cluster.status`.
    public static let latestVersion = "v2_meta"
}
