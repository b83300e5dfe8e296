import GuildNetControl
import GuildNetCore
import GuildNetKube
import GuildNetLegacy
import GuildNetMetrics
import GuildNetRuntime
import GuildNetSettings
import GuildNetStateDirectory
import GuildNetStorage
import GuildNetStore
import Logging
import ServiceLifecycle

/// `hostapp serve`: the host runtime and its transports composed as ServiceLifecycle services.
///
/// Start order: metrics listener, host, control socket, stdin. Shutdown (SIGTERM, SIGINT,
/// `host.shutdown`, or EOF on stdin) runs in reverse: transports stop accepting, then the host
/// tears every cluster down in parallel, then the metrics listener closes.
public enum Daemon {
    /// The Go app's credential key for the legacy layout: `--master-key-file`, else
    /// `GUILDNET_MASTER_KEY`; `nil` when neither is given (the all-zero key is then tried).
    static func legacyMasterKey(_ options: DaemonOptions, environment: [String: String]) throws -> GoCredential.MasterKey? {
        if let file = options.masterKeyFile {
            guard let text = GoCredential.MasterKey.contents(ofFile: file) else {
                throw HostError(.configInvalid, "cannot read the master key file \(file)")
            }
            return text.isEmpty ? nil : GoCredential.MasterKey(string: text)
        }
        guard let text = environment["GUILDNET_MASTER_KEY"], !text.isEmpty else { return nil }
        return GoCredential.MasterKey(string: text)
    }

    /// Runs the daemon until it is shut down.
    public static func run(_ options: DaemonOptions, environment: [String: String], logger: Logger) async throws {
        let lock = try StateDirectoryLock(stateDirectory: options.stateDirectory)
        defer { withExtendedLifetime(lock) {} }

        let loadSources: @Sendable () throws -> HostSettingsSources = {
            try HostSettingsSources.load(
                cliAssignments: options.settingAssignments,
                environment: environment,
                envFile: options.envFile,
                configFile: options.configFile,
                guildNetConfig: options.guildNetConfig
            )
        }
        let sources = try loadSources()
        for warning in sources.warnings {
            logger.warning("\(warning)", metadata: ["event": "settings_field_ignored"])
        }
        var configuration = HostConfiguration(stateDirectory: options.stateDirectory, logger: logger)
        configuration.settings = sources
        // The one place the storage layout is decided.
        switch options.storageLayout {
        case .perCluster:
            configuration.storage = PerClusterStorage(stateDirectory: options.stateDirectory)
        case .legacyGlobal:
            let database = try LegacyDatabase(stateDirectory: options.stateDirectory, masterKey: try legacyMasterKey(options, environment: environment))
            configuration.storage = LegacyGlobalStorage(database: database, isKubeconfig: KubeconfigLoader.isKubeconfig)
            logger.notice("serving every cluster from the legacy host-wide DB", metadata: ["event": "legacy_layout", "path": .string(database.path)])
        }
        defer { configuration.storage.close() }
        configuration.databaseBudget = options.databaseBudget
        configuration.shutdownDeadline = options.shutdownDeadline
        // Registration records live in the cluster directories, so only the per-cluster layout keeps
        // them; the legacy layout's clusters are whatever the Go app's DB holds.
        configuration.persistsRegistrations = options.storageLayout == .perCluster
        let restoreMode: RestoreMode = options.storageLayout == .perCluster ? options.restoreMode : .off
        let host = HostActor(configuration: configuration)
        host.watchSettingsFiles(sources.files, load: loadSources)

        let (shutdownRequests, shutdownContinuation) = AsyncStream<Void>.makeStream()
        let requestShutdown: @Sendable () -> Void = { shutdownContinuation.finish() }
        let hostProxy = try options.proxyAddress.map { address in
            HostProxyServer(
                host: host, address: (address.host, address.port), credentials: try HostProxyCredentials(stateDirectory: options.stateDirectory),
                logger: logger)
        }
        let dispatcher = ControlDispatcher(
            host: host, logger: logger, requestShutdown: requestShutdown, hostProxy: hostProxy,
            operatorName: options.operatorName ?? environment["USER"])
        // The host itself is one of the participants, so `host_ready` always follows `host_start`.
        let readiness = Readiness(
            expected: 1 + (options.socketPath != nil ? 1 : 0) + (options.metricsAddress != nil ? 1 : 0) + (hostProxy != nil ? 1 : 0), logger: logger,
            onReady: options.onReady)

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let hostProxy {
            services.append(.init(service: ProxyService(server: hostProxy, readiness: readiness), serviceName: "host-proxy"))
        }
        if let address = options.metricsAddress {
            let server = MetricsHTTPServer(address: address, metrics: configuration.metrics, logger: logger) { port in
                await readiness.ready("metrics", ["metrics_port": .stringConvertible(port)])
            }
            services.append(.init(service: server, serviceName: "metrics"))
        }
        services.append(.init(service: HostService(host: host, readiness: readiness, restoreMode: restoreMode), serviceName: "host"))
        if let path = options.socketPath {
            let server = ControlSocketServer(path: path, configuration: options.transport, handler: dispatcher, logger: logger)
            services.append(.init(service: SocketService(server: server, readiness: readiness), serviceName: "control-socket"))
        }
        if options.useStdin {
            let server = ControlStdioServer(configuration: options.transport, handler: dispatcher, logger: logger)
            services.append(.init(service: StdioService(server: server), successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "control-stdin"))
        }
        services.append(
            .init(
                service: ShutdownRequestService(requests: shutdownRequests), successTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "shutdown-requests"))

        var groupConfiguration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: options.handlesSignals ? [.sigterm, .sigint] : [],
            logger: logger
        )
        // A teardown that outlives the host's own deadline is escalated to cancellation, and a
        // task that ignores cancellation too ends the process, so shutdown always finishes.
        groupConfiguration.maximumGracefulShutdownDuration = options.shutdownDeadline + .seconds(5)
        groupConfiguration.maximumCancellationDuration = .seconds(10)
        let group = ServiceGroup(configuration: groupConfiguration)
        try await group.run()
        logger.info("daemon stopped", metadata: ["event": "daemon_stopped"])
    }
}

/// Runs the host's supervision tree; graceful shutdown tears every cluster down.
struct HostService: Service {
    let host: HostActor
    let readiness: Readiness
    var restoreMode: RestoreMode = .off

    func run() async {
        await withGracefulShutdownHandler {
            // Restored clusters are listed before `host_ready`, so a client never sees a partial list.
            await host.run {
                _ = await host.restore(restoreMode)
                await readiness.ready("host", [:])
            }
        } onGracefulShutdown: {
            host.beginShutdown()
        }
    }
}

/// The host proxy; stops accepting on graceful shutdown.
struct ProxyService: Service {
    let server: HostProxyServer
    let readiness: Readiness

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await server.run(onListening: { port in await readiness.ready("proxy", ["proxy_port": .stringConvertible(port)]) })
            }
        } catch is CancellationError {
            return
        }
    }
}

/// The control socket; stops accepting on graceful shutdown.
struct SocketService: Service {
    let server: ControlSocketServer
    let readiness: Readiness

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await server.run(onListening: { await readiness.ready("socket", ["socket": .string(server.path)]) })
            }
        } catch is CancellationError {
            return
        }
    }
}

/// The control protocol on stdin/stdout; its end (EOF) shuts the daemon down.
struct StdioService: Service {
    let server: ControlStdioServer

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await server.run() }
        } catch is CancellationError {
            return
        }
    }
}

/// Returns when `host.shutdown` asked for shutdown, which shuts the group down gracefully.
struct ShutdownRequestService: Service {
    let requests: AsyncStream<Void>

    func run() async {
        let requests = self.requests
        await cancelWhenGracefulShutdown {
            for await _ in requests {}
        }
    }
}

/// Logs `host_ready` once every listener is up (the line scripts wait for).
actor Readiness {
    nonisolated let expected: Int
    private var pending: Int
    private var metadata: Logger.Metadata = [:]
    private let logger: Logger
    private let onReady: (@Sendable ([String: String]) async -> Void)?

    init(expected: Int, logger: Logger, onReady: (@Sendable ([String: String]) async -> Void)? = nil) {
        self.expected = expected
        self.pending = expected
        self.logger = logger
        self.onReady = onReady
    }

    func ready(_ what: String, _ extra: Logger.Metadata) async {
        metadata.merge(extra, uniquingKeysWith: { _, new in new })
        pending -= 1
        if pending == 0 {
            metadata["event"] = "host_ready"
            logger.info("host ready", metadata: metadata)
            await onReady?(metadata.mapValues { "\($0)" })
        }
    }
}
