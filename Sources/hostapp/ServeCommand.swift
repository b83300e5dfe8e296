import ArgumentParser
import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetDaemon
import GuildNetMetrics
import GuildNetRuntime
import GuildNetStateDirectory
import GuildNetStore
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the daemon: the control protocol on a Unix socket and/or stdin."
    )

    @Option(name: .long, help: "State directory (clusters/<id>/local.db, settings.json, kubeconfig).")
    var stateDir: String

    @Option(name: .long, help: "Control socket path, mode 0600 (default: <state-dir>/hostapp.sock unless --stdin is given alone).")
    var socket: String?

    @Flag(name: .long, help: "Serve the control protocol on stdin/stdout; EOF on stdin shuts the daemon down.")
    var stdin = false

    @Option(name: .long, help: "Serve Prometheus metrics on GET /metrics at this loopback HOST:PORT (port 0 picks one).")
    var metricsAddr: String?

    @Option(
        name: .long,
        help: "Serve the host proxy (HTTPS /clusters/{cluster}/... for kubectl, bearer token in <state-dir>/proxy-token) at this loopback HOST:PORT.")
    var proxyAddr: String?

    @Option(name: .long, help: "Host config file (JSON: {\"settings\": {...}}), the global settings layer.")
    var config: String?

    @Option(
        name: .long,
        help: ".env file: GUILDNET_SETTING_<KEY>=VALUE lines (env layer; the process environment wins) and GuildNet's variables (global layer).")
    var envFile: String?

    @Option(name: .long, help: "GuildNet's config.json (~/.guildnet/config.json), read into the global settings layer and watched.")
    var guildnetConfig: String?

    @Option(name: .customLong("set"), help: "Setting override KEY=VALUE for every cluster (CLI layer; repeatable).")
    var assignments: [String] = []

    @Option(name: .long, help: "Storage layout: per-cluster (clusters/<id>/local.db) or legacy-global (guildnet.sqlite, for rollback).")
    var storageLayout: String = "per-cluster"

    @Option(name: .long, help: "legacy-global: file holding the Go app's master key (default: the GUILDNET_MASTER_KEY variable).")
    var masterKeyFile: String?

    @Option(name: .long, help: "Log format: text or json.")
    var logFormat: String = "text"

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Most cluster DB handles open at once, host-wide (LRU; default \(DatabaseBudgetConfiguration().maxOpenDatabases)).")
    var maxOpenDbs: Int?

    @Option(
        name: .long, help: "Close a cluster DB handle after this many idle seconds (default \(Int(DatabaseBudgetConfiguration().idleTTL.components.seconds))).")
    var dbIdleTtl: Int?

    @Option(
        name: .long, help: "Seconds host shutdown waits for all clusters to stop (default \(HostConfiguration.defaultShutdownDeadline.components.seconds)).")
    var shutdownTimeout: Int?

    @Option(name: .long, help: "Longest accepted control line in bytes (default \(ControlTransportConfiguration().maxLineBytes)).")
    var maxLineBytes: Int?

    @Option(
        name: .long,
        help:
            "How the clusters registered before the last stop come back: eager (start them all at once, the default), lazy (list them as idle; each starts on its first request) or off."
    )
    var restore: String = RestoreMode.eager.rawValue
    @Option(name: .long, help: "Operator named in <state-dir>/audit/admin.log for requests on stdin (default $USER; socket clients are named by their uid).")
    var `operator`: String?

    mutating func run() async throws {
        guard let format = LogFormat(rawValue: logFormat) else {
            throw ValidationError("--log-format must be text or json")
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard let layout = StorageLayoutName(rawValue: storageLayout) else {
            throw ValidationError("--storage-layout must be per-cluster or legacy-global")
        }
        guard let restoreMode = RestoreMode(rawValue: restore) else {
            throw ValidationError("--restore must be eager, lazy or off")
        }
        guard (maxOpenDbs ?? 1) >= 1, (dbIdleTtl ?? 1) >= 1, (shutdownTimeout ?? 1) >= 1, (maxLineBytes ?? 1024) >= 1024 else {
            throw ValidationError("--max-open-dbs, --db-idle-ttl and --shutdown-timeout must be positive; --max-line-bytes at least 1024")
        }
        // A client that disconnects must cost a failed write, never the daemon.
        signal(SIGPIPE, SIG_IGN)
        let stateDirectory = URL(fileURLWithPath: stateDir).standardizedFileURL.path
        var options = DaemonOptions(stateDirectory: stateDirectory)
        options.socketPath = socket ?? (stdin ? nil : StateDirectory(stateDirectory).socket)
        options.useStdin = stdin
        options.restoreMode = restoreMode
        options.storageLayout = layout
        options.masterKeyFile = masterKeyFile
        options.configFile = config
        options.envFile = envFile
        options.guildNetConfig = guildnetConfig
        options.settingAssignments = assignments
        options.logFormat = format
        options.logLevel = level
        if let maxOpenDbs { options.databaseBudget.maxOpenDatabases = maxOpenDbs }
        if let dbIdleTtl { options.databaseBudget.idleTTL = .seconds(dbIdleTtl) }
        if let shutdownTimeout { options.shutdownDeadline = .seconds(shutdownTimeout) }
        if let maxLineBytes { options.transport.maxLineBytes = maxLineBytes }
        options.operatorName = `operator`
        let logger = Logger(label: "hostapp") { label in
            HostLogHandler(label: label, format: format, level: level)
        }
        do {
            if let metricsAddr { options.metricsAddress = try MetricsAddress.parse(metricsAddr) }
            if let proxyAddr {
                do {
                    options.proxyAddress = try MetricsAddress.parse(proxyAddr)
                } catch {
                    throw HostError(.configInvalid, error.message.replacingOccurrences(of: "metrics address", with: "proxy address"))
                }
            }
            try await Daemon.run(options, environment: ProcessInfo.processInfo.environment, logger: logger)
        } catch let error as HostError {
            logger.critical("cannot serve: \(error.message)", metadata: ["event": "daemon_failed", "code": .string(error.code.rawValue)])
            throw ExitCode(1)
        }
    }
}
