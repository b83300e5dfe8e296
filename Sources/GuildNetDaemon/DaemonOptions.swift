import GuildNetControl
import GuildNetCore
import GuildNetMetrics
import GuildNetRuntime
import GuildNetStore
import Logging

/// Everything `hostapp serve` was asked to do, after flag parsing.
public struct DaemonOptions: Sendable {
    public var stateDirectory: String
    /// The control socket; `nil` serves no socket (stdin only).
    public var socketPath: String?
    /// Serve the control protocol on stdin/stdout too; EOF on stdin shuts the daemon down.
    public var useStdin = false
    /// The loopback `/metrics` listener; `nil` serves none.
    public var metricsAddress: MetricsAddress?
    /// The host proxy (`/clusters/{cluster}/…` over HTTPS for kubectl) on this loopback address; `nil` serves none.
    public var proxyAddress: MetricsAddress?
    /// Host config file (JSON, `{"settings":{…}}`).
    public var configFile: String?
    /// `.env` file: `GUILDNET_SETTING_*` variables (env layer) and GuildNet's own variables (global layer).
    public var envFile: String?
    /// GuildNet's `config.json` (global layer).
    public var guildNetConfig: String?
    /// `--set KEY=VALUE` assignments (CLI layer).
    public var settingAssignments: [String] = []
    /// `per-cluster` (default) or `legacy-global` (serve every cluster from `guildnet.sqlite`).
    public var storageLayout: StorageLayoutName = .perCluster
    /// `legacy-global` only: a file holding the Go app's master key (else `GUILDNET_MASTER_KEY`).
    public var masterKeyFile: String?
    public var logFormat: LogFormat = .text
    public var logLevel: Logger.Level = .info
    /// Host-wide cap and idle TTL of open cluster DB handles.
    public var databaseBudget = DatabaseBudgetConfiguration()
    public var shutdownDeadline = HostConfiguration.defaultShutdownDeadline
    public var transport = ControlTransportConfiguration()
    /// How the clusters registered before the last stop come back (per-cluster layout only; see ``RestoreMode``).
    public var restoreMode: RestoreMode = .eager
    /// Shut down gracefully on SIGTERM and SIGINT. An embedder that handles the signals itself
    /// (`hostapp demo`) turns it off and stops the daemon with `host.shutdown`.
    public var handlesSignals = true
    /// Called once every listener is up, with the `host_ready` fields (`metrics_port`, `socket`, …).
    public var onReady: (@Sendable ([String: String]) async -> Void)?
    /// Who `<state-dir>/audit/admin.log` names for stdin requests (`--operator`; default `$USER`).
    public var operatorName: String?

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }

}

/// The `--storage-layout` values.
public enum StorageLayoutName: String, Sendable, CaseIterable {
    case perCluster = "per-cluster"
    case legacyGlobal = "legacy-global"
}
