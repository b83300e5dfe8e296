import GuildNetCore
import GuildNetSettings
import GuildNetStorage
import GuildNetStore
import Logging

/// The `legacy-global` layout: every cluster served from the Go app's one host-wide DB
/// (``LegacyDatabase``), for rollback after a migration. Kubeconfigs are kept in `credentials` as
/// `cl:<id>:kubeconfig`, settings in `cluster-settings`, data per ``LegacyMapping``.
public struct LegacyGlobalStorage: ClusterStorage {
    public let database: LegacyDatabase
    /// Tells a plaintext kubeconfig from ciphertext (the Go app's read rule; from GuildNetKube).
    let isKubeconfig: @Sendable (String) -> Bool

    public init(database: LegacyDatabase, isKubeconfig: @escaping @Sendable (String) -> Bool) {
        self.database = database
        self.isKubeconfig = isKubeconfig
    }

    public var layoutName: String { "legacy-global" }

    /// Stores the kubeconfig as the Go app did; the legacy layout has no per-cluster directory.
    public func prepare(_ cluster: ClusterID, context: String?, kubeconfig: String?) async throws {
        if let kubeconfig {
            try database.storeKubeconfig(kubeconfig, cluster: cluster.key)
        }
    }

    public func makeStore(for cluster: ClusterID, environment: StoreEnvironment) -> any ClusterKeyValueStore {
        LegacyClusterStore(cluster: cluster, database: database)
    }

    public func makeSettingsStorage(for cluster: ClusterID, logger: Logger) -> any ClusterSettingsStorage {
        LegacySettingsStorage(cluster: cluster, database: database, logger: logger)
    }

    public func kubeconfig(of cluster: ClusterID) async throws -> String? {
        try database.kubeconfig(cluster: cluster.key, isKubeconfig: isKubeconfig)
    }

    /// The shared DB holds other clusters' data too: purging one cluster is refused.
    public func purge(_ cluster: ClusterID) async throws {
        throw HostError(.invalidField, "purge is not supported in the legacy-global layout; the cluster was unregistered, its data kept")
    }

    public func close() {
        database.close()
    }
}
