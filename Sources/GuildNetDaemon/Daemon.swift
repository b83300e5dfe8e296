import GuildNetControl
import GuildNetCore
import GuildNetLegacy
import GuildNetMetrics
import GuildNetRuntime
import GuildNetSettings
import Logging
import ServiceLifecycle

/// `hostapp serve`: the host runtime and its transports composed as ServiceLifecycle services.
///
/// Start order: metrics listener, host, control socket, stdin. Shutdown (SIGTERM, SIGINT,
/// `host.shutdown`, or EOF on stdin) runs in reverse: transports stop accepting, then the host
/// tears every cluster down in parallel, then the metrics listener closes.
public enum Daemon {
    /// Runs the daemon until it is shut down.
    public static func run(_ options: DaemonOptions, environment: [String: String], logger: Logger) async throws {
        let lock = try StateDirectoryLock(stateDirectory: options.stateDirectory)
        defer { withExtendedLifetime(lock) {} }

        let sources = try HostSettingsSources.load(
            cliAssignments: options.settingAssignments,
            environment: environment,
            envFile: options.envFile,
            configFile: options.configFile
        )
        var configuration = HostConfiguration(stateDirectory: options.stateDirectory, logger: logger)
        configuration.settings = sources
        var legacyDatabase: LegacyDatabase?
        if options.storageLayout == .legacyGlobal {
            let database = try LegacyDatabase(stateDirectory: options.stateDirectory)
            legacyDatabase = database
            configuration.storageLayout = .legacyGlobal(database)
            logger.notice("serving every cluster from the legacy host-wide DB", metadata: ["event": "legacy_layout", "path": .string(database.path)])
        }
        defer { legacyDatabase?.close() }
        configuration.databaseBudget.maxOpenDatabases = options.maxOpenDatabases
        configuration.databaseBudget.idleTTL = options.databaseIdleTTL
        configuration.shutdownDeadline = options.shutdownDeadline
        let host = HostActor(configuration: configuration)

        let (shutdownRequests, shutdownContinuation) = AsyncStream<Void>.makeStream()
        let requestShutdown: @Sendable () -> Void = { shutdownContinuation.finish() }
        let dispatcher = ControlDispatcher(host: host, logger: logger, requestShutdown: requestShutdown)
        // The host itself is one of the participants, so `host_ready` always follows `host_start`.
        let readiness = Readiness(expected: 1 + (options.socketPath != nil ? 1 : 0) + (options.metricsAddress != nil ? 1 : 0), logger: logger)

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let address = options.metricsAddress {
            let server = MetricsHTTPServer(address: address, metrics: configuration.metrics, logger: logger) { port in
                await readiness.ready("metrics", ["metrics_port": .stringConvertible(port)])
            }
            services.append(.init(service: server, serviceName: "metrics"))
        }
        services.append(.init(service: HostService(host: host, readiness: readiness), serviceName: "host"))
        if let path = options.socketPath {
            let server = ControlSocketServer(path: path, configuration: options.transport, handler: dispatcher, logger: logger)
            services.append(.init(service: SocketService(server: server, readiness: readiness), serviceName: "control-socket"))
        }
        if options.useStdin {
            let server = ControlStdioServer(configuration: options.transport, handler: dispatcher, logger: logger)
            services.append(.init(service: StdioService(server: server), successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "control-stdin"))
        }
        services.append(.init(service: ShutdownRequestService(requests: shutdownRequests), successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "shutdown-requests"))

        var groupConfiguration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
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

    func run() async {
        await withGracefulShutdownHandler {
            await host.run { await readiness.ready("host", [:]) }
        } onGracefulShutdown: {
            host.beginShutdown()
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

    init(expected: Int, logger: Logger) {
        self.expected = expected
        self.pending = expected
        self.logger = logger
    }

    func ready(_ what: String, _ extra: Logger.Metadata) {
        metadata.merge(extra, uniquingKeysWith: { _, new in new })
        pending -= 1
        if pending <= 0 {
            metadata["event"] = "host_ready"
            logger.info("host ready", metadata: metadata)
        }
    }
}
