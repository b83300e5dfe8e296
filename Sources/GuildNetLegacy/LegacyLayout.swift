import GuildNetCore
import GuildNetStateDirectory

/// The legacy host-wide layout of the Go GuildNet host app: one SQLite file
/// `<state-dir>/guildnet.sqlite` with one table
/// `kv(collection TEXT, key TEXT, value BLOB, PRIMARY KEY(collection, key))` of JSON values.
/// See docs/migration-rollback.md for the collections and how they map to clusters.
public enum LegacyLayout {
    /// The legacy DB file name inside the state directory.
    public static let fileName = StateDirectory.legacyDatabaseName

    public static func databasePath(stateDirectory: String) -> String {
        StateDirectory(stateDirectory).legacyDatabase
    }

    /// The legacy table, exactly as the Go app creates it.
    public static let createTableSQL = """
        CREATE TABLE IF NOT EXISTS kv (
            collection TEXT NOT NULL,
            key TEXT NOT NULL,
            value BLOB,
            PRIMARY KEY (collection, key)
        )
        """

    /// Collections that hold host-wide data; they are never moved into a cluster.
    public static let hostGlobalCollections: Set<String> = ["orgs", "headscales", "namespaces", "keys", "nodes", "settings"]

    /// Collections whose records may or may not name a cluster (by a `cluster`, `cluster_id`,
    /// `clusterId` or `clusterID` field of the JSON value).
    public static let maybeClusterCollections: Set<String> = ["jobs", "joblogs", "audit"]

    /// The collection hostapp itself uses in the legacy layout for per-cluster keys that have no
    /// Go-app collection: key `<cluster-id>/<key>`.
    public static let clusterKVCollection = "cluster-kv"
}
