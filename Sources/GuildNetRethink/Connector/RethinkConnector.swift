import GuildNetCore
import Logging

/// One cluster's access to its RethinkDB: a lazy pool of multiplexed connections, queries, and the
/// cluster's changefeeds. Never shared between clusters.
///
/// - Lazy: nothing connects until the first query; ``warmup()`` connects and runs SERVER_INFO
///   (readiness).
/// - Pool: at most `maxConnections`. A query takes the least-loaded open connection (ties rotate);
///   a new connection opens only when every open one is busy and the pool has room. While the
///   first connection is being opened other callers wait for it (and share its error). Closed
///   connections are dropped and replaced on demand.
/// - The address comes from the resolver on each new connection (discovery through the cluster's
///   Kubernetes client, or the `rethinkdb.address` setting), else from the configuration. A
///   resolver that takes longer than the connect timeout counts as `rethink_unreachable`.
/// - ``run()`` hosts the changefeeds' task group and is run by the cluster's supervisor;
///   ``shutdown()`` ends every feed and closes every connection.
public actor RethinkConnector {
    public nonisolated let configuration: RethinkConnectorConfiguration
    /// The cluster's changefeeds (``subscribe(_:primaryKey:bufferLimit:overflow:)`` forwards here).
    public nonisolated let changefeeds: RethinkChangefeed
    private let resolveAddress: @Sendable () async throws -> RethinkAddress
    private let logger: Logger

    private var connections: [RethinkConnection] = []
    private var opening = 0
    private var openWaiters: [CheckedContinuation<HostError?, Never>] = []
    private var rotation = 0
    private var leases: [ObjectIdentifier: Int] = [:]
    private var lastAddress: RethinkAddress?
    private var connectionsOpened = 0
    private var queriesRun = 0
    private var failures = 0
    private var lastError: HostError?
    private var isShutDown = false

    /// - Parameter resolveAddress: called for each new connection; by default the configured address
    ///   (`rethink_not_configured` when there is none).
    public init(
        configuration: RethinkConnectorConfiguration,
        resolveAddress: (@Sendable () async throws -> RethinkAddress)? = nil,
        logger: Logger = Logger(label: "guildnet.rethink")
    ) {
        self.configuration = configuration
        self.logger = logger
        let configured = configuration.address
        self.resolveAddress =
            resolveAddress ?? {
                guard let configured else {
                    throw RethinkError.notConfigured(reason: "no RethinkDB address is configured (setting rethinkdb.address)")
                        .hostError
                }
                return configured
            }
        changefeeds = RethinkChangefeed(
            limit: configuration.maxFeeds, backoff: configuration.reconnectBackoff,
            eventBudget: TokenBucket(rate: Double(configuration.feedEventsPerSecond), burst: configuration.feedBurst),
            logger: logger)
    }

    // MARK: Queries

    /// Opens a connection if none is open and runs SERVER_INFO; returns the server's info.
    public func warmup() async throws -> JSONValue {
        let timeout = configuration.queryTimeout
        return try await perform { try await $0.serverInfo(timeout: timeout) }
    }

    /// Runs `term`: an atom as is, a finite sequence collected into an array (at most `maxResultRows`).
    public func run(_ term: ReQL, db: String? = nil) async throws -> JSONValue {
        let timeout = configuration.queryTimeout
        let maxRows = configuration.maxResultRows
        return try await perform { try await $0.run(term, db: db, timeout: timeout, maxRows: maxRows) }
    }

    /// Starts `term` and returns its cursor (pages on demand; STOP when dropped early).
    public func cursor(_ term: ReQL, db: String? = nil) async throws -> RethinkCursor {
        let timeout = configuration.queryTimeout
        return try await perform { try await $0.cursor(term, db: db, timeout: timeout) }
    }

    // MARK: Changefeeds

    /// Subscribes to a changefeed term (ending with `changes(…)`); see ``RethinkChangefeed`` for the
    /// resume semantics, cap and overflow policy. Defaults come from the configuration.
    public func subscribe(
        _ term: ReQL, primaryKey: String = "id", bufferLimit: Int? = nil, overflow: ChangefeedOverflowPolicy? = nil
    ) async throws -> ChangefeedSubscription {
        try checkOpen()
        return try await changefeeds.subscribe(
            term, primaryKey: primaryKey, bufferLimit: bufferLimit ?? configuration.feedBufferLimit,
            overflow: overflow ?? configuration.feedOverflow, source: self)
    }

    /// Ends a subscription with `.ended(nil)`; `false` if unknown.
    @discardableResult
    public func unsubscribe(_ id: ChangefeedID) async -> Bool {
        await changefeeds.unsubscribe(id)
    }

    /// The connector's long-running work (the changefeeds' task group), for the cluster's supervisor.
    /// Returns when cancelled or after ``shutdown()``.
    public func run() async throws {
        try await changefeeds.run()
    }

    // MARK: Lifecycle and status

    /// Ends every changefeed, closes every connection (their descriptors are freed), and refuses
    /// later queries (`rethink_connection_lost`, not transient). Idempotent.
    public func shutdown() async {
        if !isShutDown {
            isShutDown = true
            logger.info("rethink connector shutting down", metadata: ["open_connections": "\(connections.count)"])
        }
        // Callers waiting for a connection (feeds resubscribing included) fail now, so no feed waits.
        resumeOpenWaiters(with: RethinkError.shutDown.hostError)
        await changefeeds.shutdown()
        let open = connections
        connections.removeAll()
        for connection in open {
            await connection.close()
        }
    }

    /// A snapshot: address (never the password), connections, counters, last error, feeds.
    public func status() async -> RethinkConnectorStatus {
        pruneClosed()
        let feeds = await changefeeds.statistics()
        return RethinkConnectorStatus(
            address: (lastAddress ?? configuration.address)?.description, user: configuration.user,
            openConnections: connections.count,
            pendingQueries: connections.reduce(0) { $0 + $1.pendingQueries }, maxConnections: configuration.maxConnections,
            connectionsOpened: connectionsOpened, queriesRun: queriesRun, failures: failures, lastError: lastError,
            feeds: feeds, shutDown: isShutDown)
    }

    // MARK: Pool

    /// A connection for one or more queries: the least-loaded open one, or a new one when all are busy
    /// and the pool has room.
    public func connection() async throws -> RethinkConnection {
        while true {
            try checkOpen()
            pruneClosed()
            if connections.isEmpty && opening > 0 {
                if let error = await waitForOpening() { throw error }
                continue
            }
            if let best = leastLoaded(), load(of: best) == 0 || connections.count + opening >= configuration.maxConnections {
                return best
            }
            return try await openConnection()
        }
    }

    /// Runs `body` on a pooled connection, counted in that connection's load while it runs (so
    /// concurrent callers see it busy before its query is even written).
    private func perform<T: Sendable>(_ body: @Sendable (RethinkConnection) async throws -> T) async throws -> T {
        queriesRun += 1
        do {
            let connection = try await connection()
            let key = ObjectIdentifier(connection)
            leases[key, default: 0] += 1
            defer {
                leases[key, default: 1] -= 1
                if leases[key] == 0 { leases[key] = nil }
            }
            return try await body(connection)
        } catch {
            record(error)
            throw error
        }
    }

    /// Queries leased on a connection plus the responses it awaits (feeds' long polls included).
    private func load(of connection: RethinkConnection) -> Int {
        leases[ObjectIdentifier(connection), default: 0] + connection.pendingQueries
    }

    private func openConnection() async throws -> RethinkConnection {
        opening += 1
        let outcome: Result<RethinkConnection, any Error>
        do {
            let address: RethinkAddress
            do {
                let resolve = resolveAddress
                address = try await withDeadline(configuration.connectTimeout, "resolving the RethinkDB address") {
                    try await resolve()
                }
            } catch let error as HostError where error.code == .timeout {
                throw RethinkError.unreachable(address: "(unresolved)", reason: error.message).hostError
            } catch let error as HostError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw RethinkError.unreachable(address: "(unresolved)", reason: "cannot resolve the address: \(error)").hostError
            }
            lastAddress = address
            outcome = .success(
                try await RethinkConnection.connect(
                    to: address, user: configuration.user, password: configuration.password,
                    options: configuration.connectionOptions, logger: logger))
        } catch {
            outcome = .failure(error)
        }
        opening -= 1
        switch outcome {
        case .success(let connection):
            guard !isShutDown else {
                await connection.close()
                resumeOpenWaiters(with: RethinkError.shutDown.hostError)
                throw RethinkError.shutDown.hostError
            }
            connections.append(connection)
            connectionsOpened += 1
            logger.info(
                "rethink connection opened",
                metadata: ["address": "\(connection.address)", "user": "\(configuration.user)", "open": "\(connections.count)"])
            resumeOpenWaiters(with: nil)
            return connection
        case .failure(let error):
            // Waiters retry after a cancellation; they share a real failure.
            resumeOpenWaiters(with: error is CancellationError ? nil : HostError.wrapping(error))
            throw error
        }
    }

    private func waitForOpening() async -> HostError? {
        await withCheckedContinuation { openWaiters.append($0) }
    }

    private func resumeOpenWaiters(with error: HostError?) {
        let waiters = openWaiters
        openWaiters.removeAll()
        for waiter in waiters { waiter.resume(returning: error) }
    }

    private func leastLoaded() -> RethinkConnection? {
        guard !connections.isEmpty else { return nil }
        let count = connections.count
        rotation &+= 1
        var best: RethinkConnection?
        var bestLoad = Int.max
        for offset in 0..<count {
            let candidate = connections[(rotation + offset) % count]
            let candidateLoad = load(of: candidate)
            if candidateLoad < bestLoad {
                best = candidate
                bestLoad = candidateLoad
            }
        }
        return best
    }

    private func pruneClosed() {
        connections.removeAll { connection in
            guard !connection.isOpen else { return false }
            logger.warning(
                "rethink connection lost",
                metadata: [
                    "address": "\(connection.address)", "reason": "\(connection.closeReason?.message ?? "closed")",
                ])
            connection.channel.close(promise: nil)
            leases[ObjectIdentifier(connection)] = nil
            return true
        }
    }

    private func record(_ error: any Error) {
        guard !(error is CancellationError) else { return }
        let hostError = HostError.wrapping(error)
        failures += 1
        lastError = hostError
        switch hostError.code {
        case .rethinkQueryError, .rethinkSchemaMissing, .invalidField:
            logger.debug("rethink query failed", metadata: ["code": "\(hostError.code)", "error": "\(hostError.message)"])
        case .rethinkUnavailable:
            // A table starting or failing over; feeds retry until it is ready.
            logger.warning("rethink query failed", metadata: ["code": "\(hostError.code)", "error": "\(hostError.message)"])
        default:
            logger.error("rethink query failed", metadata: ["event": "rethink_query_failed", "code": "\(hostError.code)", "error": "\(hostError.message)"])
        }
    }

    private func checkOpen() throws {
        if isShutDown { throw RethinkError.shutDown.hostError }
    }
}

extension RethinkConnector: ChangefeedSource {
    /// Feeds ask for batches of at most ``RethinkConnectorConfiguration/feedBatchRows`` rows: a
    /// flooded feed then arrives in small responses, each decoded in a short turn, instead of
    /// thousands of rows decoded at once while other clusters' events wait for the thread.
    func openFeedCursor(_ term: ReQL) async throws -> RethinkCursor {
        let timeout = configuration.queryTimeout
        let batchRows = configuration.feedBatchRows
        return try await perform { try await $0.cursor(term, timeout: timeout, maxBatchRows: batchRows) }
    }
}
