import GuildNetCore

/// The on-disk layout of one cluster: `<state-dir>/clusters/<id>/`. Made by
/// ``StateDirectory/cluster(_:)``.
public struct ClusterPaths: Sendable, Equatable {
    public var directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public init(stateDirectory: String, cluster: ClusterID) {
        self = StateDirectory(stateDirectory).cluster(cluster)
    }

    /// The per-cluster SQLite database.
    public var database: String { directory + "/local.db" }
    /// Per-cluster settings (cluster layer), in the ``SettingsDocument`` format.
    public var settings: String { directory + "/settings.json" }
    /// The cluster's resolved kubeconfig, mode 0600.
    public var kubeconfig: String { directory + "/kubeconfig" }
    /// The ``ClusterIdentity`` record: the operator's name for this key, so collisions are detected
    /// across restarts.
    public var identity: String { directory + "/cluster.json" }
    /// The ``ClusterRegistration`` record: present while the cluster is registered, so the daemon
    /// restores it at start.
    public var registration: String { directory + "/registration.json" }
}
