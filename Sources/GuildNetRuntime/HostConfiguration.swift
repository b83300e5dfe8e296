import GuildNetCore
import GuildNetMetrics
import GuildNetSettings
import GuildNetStateDirectory
import GuildNetStorage
import GuildNetStore
import Logging

/// Everything a ``HostActor`` needs; one value per host, no globals.
public struct HostConfiguration: Sendable {
    /// Root of the state directory (`clusters/<id>/…` lives below it).
    public var stateDirectory: String
    public var store = StoreConfiguration()
    public var databaseBudget = DatabaseBudgetConfiguration()
    public var restartPolicy = RestartPolicy()
    /// How long `cluster.register` waits for the cluster to become ready or degraded before
    /// replying with its current state.
    public var startTimeout: Duration = .seconds(30)
    /// How long `cluster.unregister` waits for teardown before replying `teardown_timeout`
    /// (teardown goes on; the id stays reserved until it finishes).
    public var teardownDeadline: Duration = .seconds(10)
    /// How long host shutdown waits for all clusters, torn down in parallel, before cancelling.
    public var shutdownDeadline = Self.defaultShutdownDeadline
    /// The default of ``shutdownDeadline`` (`serve --shutdown-timeout`).
    public static let defaultShutdownDeadline: Duration = .seconds(20)
    /// Where cluster data lives: per-cluster directories (default) or, injected by the daemon, the
    /// legacy host-wide DB. The only place the layout is decided.
    public var storage: any ClusterStorage
    /// Host-wide settings layers (CLI, env, host config).
    public var settings = HostSettingsSources()
    /// Watches every cluster's `settings.json` with one descriptor; the host makes one when `nil`.
    public var settingsWatchHub: FileWatchHub?
    public var logger: Logger
    public var metrics: HostMetrics
    /// Keep a `clusters/<id>/registration.json` record per registered cluster (written by
    /// `cluster.register`, removed by `cluster.unregister`), for ``HostActor/restore(_:)``. The
    /// daemon turns it on for the per-cluster layout; embedded hosts (tests) leave it off.
    public var persistsRegistrations = false
    /// How long unregistrations must stop before the host gives the freed heap back to the
    /// operating system (``FreedMemoryReturner``); `nil` never trims.
    public var memoryTrimQuietPeriod: Duration? = .seconds(5)
    /// Extra children for every cluster, appended after the built-in ones. Tests use it to inject
    /// failing or slow children; later subsystems are wired in ``ClusterActor`` itself.
    public var extraChildren: @Sendable (ClusterContext) -> [any ClusterChild] = { _ in [] }

    public init(stateDirectory: String, logger: Logger, metrics: HostMetrics = HostMetrics()) {
        self.stateDirectory = stateDirectory
        self.storage = PerClusterStorage(stateDirectory: stateDirectory)
        self.logger = logger
        self.metrics = metrics
    }
}

/// Restart policy of a cluster's children (OTP-style intensity): a failed child restarts after a
/// capped, jittered backoff; more than ``maxRestarts`` failures within ``window`` and it stays failed.
public struct RestartPolicy: Sendable {
    public var backoff = Backoff(initial: .milliseconds(100), cap: .seconds(30), jitter: 0.5)
    public var maxRestarts = 10
    public var window: Duration = .seconds(300)
    /// A child that ran this long without failing starts its backoff from the beginning again.
    public var resetAfter: Duration = .seconds(60)

    public init() {}
}

/// What a child factory gets to build a cluster's child.
public struct ClusterContext: Sendable {
    public var cluster: ClusterID
    public var paths: ClusterPaths
    public var logger: Logger
    public var metrics: ClusterMetrics
}
