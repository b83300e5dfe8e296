import GRDB

/// STORESCHEMA-EQUIVALENT — TEMPORARY. `GuildNetStore.StoreSchema` is internal, so the migration
/// cannot run the store's own migrator. This is the same `DatabaseMigrator` (same migration
/// identifiers `v1_kv`, `v2_meta`, same SQL) so that `ClusterStore` opening a migrated `local.db`
/// finds every migration applied. Replace with `StoreSchema.migrator` as soon as GuildNetStore
/// exposes it (`package` or `public`); until then any new store migration must be added here too.
enum TargetSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1_kv") { db in
            try db.execute(sql: """
                CREATE TABLE kv (
                    key TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL
                ) WITHOUT ROWID
                """)
        }
        migrator.registerMigration("v2_meta") { db in
            try db.execute(sql: """
                CREATE TABLE meta (
                    name TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                ) WITHOUT ROWID
                """)
        }
        return migrator
    }
}
