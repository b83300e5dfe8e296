import GuildNetCore

/// The on-disk layout of one cluster: `<state-dir>/clusters/<id>/`.
public struct ClusterPaths: Sendable, Equatable {
    public var directory: String

    public init(stateDirectory: String, cluster: ClusterID) {
        self.directory = Self.clustersDirectory(stateDirectory) + "/" + cluster.key
    }

    /// `<state-dir>/clusters`.
    public static func clustersDirectory(_ stateDirectory: String) -> String {
        stateDirectory + "/clusters"
    }

    /// The per-cluster SQLite database.
    public var database: String { directory + "/local.db" }
    /// Per-cluster settings (cluster layer).
    public var settings: String { directory + "/settings.json" }
    /// The cluster's resolved kubeconfig, mode 0600.
    public var kubeconfig: String { directory + "/kubeconfig" }
    /// Identity record: the operator's name for this key, so collisions are detected across restarts.
    public var identity: String { directory + "/cluster.json" }
}
