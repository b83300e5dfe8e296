import GuildNetControl
import GuildNetCore
import GuildNetMetrics
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
    /// Host config file (JSON, `{"settings":{…}}`).
    public var configFile: String?
    /// `KEY=VALUE` file of `GUILDNET_SETTING_*` variables.
    public var envFile: String?
    /// `--set KEY=VALUE` assignments (CLI layer).
    public var settingAssignments: [String] = []
    /// `per-cluster` (default) or `legacy-global` (serve every cluster from `guildnet.sqlite`).
    public var storageLayout: StorageLayoutName = .perCluster
    /// `legacy-global` only: a file holding the Go app's master key (else `GUILDNET_MASTER_KEY`).
    public var masterKeyFile: String?
    public var logFormat: LogFormat = .text
    public var logLevel: Logger.Level = .info
    public var maxOpenDatabases = 128
    public var databaseIdleTTL: Duration = .seconds(120)
    public var shutdownDeadline: Duration = .seconds(20)
    public var transport = ControlTransportConfiguration()

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }

    /// The default socket path: `<state-dir>/hostapp.sock`.
    public static func defaultSocketPath(stateDirectory: String) -> String {
        stateDirectory + "/hostapp.sock"
    }
}

/// The `--storage-layout` values.
public enum StorageLayoutName: String, Sendable, CaseIterable {
    case perCluster = "per-cluster"
    case legacyGlobal = "legacy-global"
}
