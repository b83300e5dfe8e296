import GuildNetCore
import GuildNetSettings
import GuildNetStateDirectory
import GuildNetStore
import Logging

/// The default layout: every cluster in its own directory `<state-dir>/clusters/<id>/` (mode 0700)
/// with `local.db`, `settings.json`, `kubeconfig` (0600) and its ``ClusterIdentity`` record.
public struct PerClusterStorage: ClusterStorage {
    public let stateDirectory: StateDirectory

    public init(stateDirectory: String) {
        self.stateDirectory = StateDirectory(stateDirectory)
    }

    public var layoutName: String { "per-cluster" }

    /// Creates the directory, checks the identity record against the name (so two names never
    /// share a directory, even across restarts), writes the kubeconfig, then the identity record.
    public func prepare(_ cluster: ClusterID, context: String?, kubeconfig: String?) async throws {
        let paths = stateDirectory.cluster(cluster)
        do {
            try AtomicFile.makeDirectories(paths.directory)
        } catch {
            throw HostError(.io, "cannot create \(paths.directory): \(error.reason)")
        }
        try ClusterIdentity.check(paths, belongsTo: cluster)
        if let kubeconfig {
            do {
                try AtomicFile.write(Array(kubeconfig.utf8), to: paths.kubeconfig)
            } catch {
                throw HostError(.io, "cannot write the cluster's kubeconfig: \(error.description)")
            }
        }
        try ClusterIdentity(cluster, context: context).write(to: paths)
    }

    public func makeStore(for cluster: ClusterID, environment: StoreEnvironment) -> any ClusterKeyValueStore {
        ClusterStore(
            cluster: cluster,
            path: stateDirectory.cluster(cluster).database,
            configuration: environment.configuration,
            budget: environment.budget,
            counters: environment.counters,
            logger: environment.logger,
            onOpenChange: environment.onOpenChange,
            onError: environment.onError
        )
    }

    public func makeSettingsStorage(for cluster: ClusterID, logger: Logger) -> any ClusterSettingsStorage {
        SettingsFile(path: stateDirectory.cluster(cluster).settings)
    }

    public func kubeconfig(of cluster: ClusterID) async throws -> String? {
        let path = stateDirectory.cluster(cluster).kubeconfig
        do {
            return try AtomicFile.read(path).map { String(decoding: $0, as: UTF8.self) }
        } catch {
            throw HostError(.kubeconfigInvalid, "cannot read the cluster's kubeconfig: \(error.description)")
        }
    }

    public func purge(_ cluster: ClusterID) async throws {
        let directory = stateDirectory.cluster(cluster).directory
        do {
            try AtomicFile.removeTree(directory)
        } catch {
            throw HostError(.io, "cannot remove \(directory): \(error.description)")
        }
    }

    public func close() {}
}
