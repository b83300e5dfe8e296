import GuildNetCore
import GuildNetSettings
import GuildNetStore
import Logging

/// Where a cluster's data lives, behind one interface: the per-cluster layout
/// (``PerClusterStorage``, the default) or the Go app's host-wide DB (`LegacyGlobalStorage` in
/// GuildNetLegacy, `serve --storage-layout legacy-global`). The daemon chooses one implementation
/// at start and injects it; nothing else in the runtime knows which layout it serves.
///
/// The file work of ``prepare(_:context:kubeconfig:)`` and ``purge(_:)`` runs in the cluster's own
/// task, never on the host's registry actor, so a slow disk during one cluster's registration or
/// purge cannot stall requests for other clusters.
public protocol ClusterStorage: Sendable {
    /// `per-cluster` or `legacy-global` (the `--storage-layout` value, shown by `host.status`).
    var layoutName: String { get }

    /// Makes the cluster's place ready before its children start: checks that it belongs to this
    /// cluster name, and stores `kubeconfig` (already resolved and self-contained) when given.
    /// - Throws: `cluster_id_collision`, `io_error`, `db_error`.
    func prepare(_ cluster: ClusterID, context: String?, kubeconfig: String?) async throws

    /// The cluster's key-value store (a child of the cluster; not opened yet).
    func makeStore(for cluster: ClusterID, environment: StoreEnvironment) -> any ClusterKeyValueStore

    /// Where the cluster's settings layer is kept.
    func makeSettingsStorage(for cluster: ClusterID, logger: Logger) -> any ClusterSettingsStorage

    /// The cluster's stored kubeconfig text, or `nil` when it has none.
    /// - Throws: `kubeconfig_invalid` when it cannot be read.
    func kubeconfig(of cluster: ClusterID) async throws -> String?

    /// Deletes everything stored for the cluster (after its teardown, when the operator asked).
    /// - Throws: `io_error`, or `invalid_field` when the layout cannot purge.
    func purge(_ cluster: ClusterID) async throws

    /// Releases host-wide resources (a shared DB) at host shutdown.
    func close()
}

/// What a store needs from its host: budget, counters and configuration.
public struct StoreEnvironment: Sendable {
    public var configuration: StoreConfiguration
    public var budget: DatabaseBudget
    public var counters: ResourceCounters
    public var logger: Logger
    /// Told `true` when the store's handle opens and `false` when it closes.
    public var onOpenChange: @Sendable (Bool) -> Void
    /// Told about every failed operation (`duringOpen == false`) and every open that failed after
    /// all its retries (`duringOpen == true`); drives the DB error series.
    public var onError: @Sendable (_ error: HostError, _ duringOpen: Bool) -> Void = { _, _ in }

    public init(
        configuration: StoreConfiguration, budget: DatabaseBudget, counters: ResourceCounters, logger: Logger,
        onOpenChange: @escaping @Sendable (Bool) -> Void
    ) {
        self.configuration = configuration
        self.budget = budget
        self.counters = counters
        self.logger = logger
        self.onOpenChange = onOpenChange
    }
}
