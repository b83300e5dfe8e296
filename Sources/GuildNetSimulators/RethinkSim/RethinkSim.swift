import GuildNetCore
import GuildNetRethink
import Logging
import NIOCore
import NIOPosix

/// A RethinkDB test server speaking the real V1_0 wire protocol (handshake with SCRAM-SHA-256,
/// token-multiplexed queries, paged streams, changefeeds) over in-memory databases, with
/// RethinkDB 2.4's semantics and messages for a term subset, plus fault injection.
/// The official Python driver referees it (Tests/GuildNetSimulatorsTests/RethinkSimRefereeTests.swift).
///
/// Terms: datums, MAKE_ARRAY, MAKE_OBJ, FUNC/VAR/IMPLICIT_VAR, FUNCALL, EQ/NE/LT/LE/GT/GE, NOT/AND/OR,
/// ADD/SUB/MUL/DIV, GET_FIELD/BRACKET/NTH, HAS_FIELDS, DEFAULT, ERROR, db, table, get, get_all (`index`),
/// filter (function or object, `default`), order_by (fields, asc/desc, functions, `index`), limit, count,
/// pluck, insert (`conflict`, `return_changes`), update, replace, delete, changes (`include_initial`,
/// `include_states`, `include_types`, `squash`, `changefeed_queue_size`; on a table, get, get_all,
/// filter, pluck), db_create/db_drop/db_list, table_create (`primary_key`)/table_drop/table_list,
/// index_create (field or function, `multi`)/index_list/index_drop/index_status/index_wait, wait.
/// Any other term is a COMPILE_ERROR naming its number. Not modelled: the `rethinkdb` system database,
/// time/geo/binary pseudo-types, changes on `order_by().limit()`.
///
/// Lifecycle: `init`, then `run()` inside the owner's task group (serves until cancelled or
/// `stop()`), `endpoint()` waits until listening. `withRunning` does all three.
public actor RethinkSim: SimulatedServer {
    public nonisolated let options: RethinkSimOptions
    nonisolated let shared: RethinkSimShared

    private var endpointState = EndpointWaiters<RethinkSimEndpoint>()
    private var started = false
    private let stopSignal: AsyncStream<Void>
    private let stopContinuation: AsyncStream<Void>.Continuation

    /// Derives each user's SCRAM keys (PBKDF2 with `options.iterations`); database `test` exists.
    public init(options: RethinkSimOptions = RethinkSimOptions()) async throws {
        self.options = options
        do {
            shared = try RethinkSimShared(options: options)
        } catch {
            throw HostError(.invalidRequest, "RethinkSim cannot derive SCRAM keys (iterations \(options.iterations)): \(error)")
        }
        (stopSignal, stopContinuation) = AsyncStream<Void>.makeStream()
    }

    /// Runs RethinkSim, serves until `body` returns, then stops it. The server is a child task of this call.
    public static func withRunning<T: Sendable>(
        options: RethinkSimOptions = RethinkSimOptions(),
        _ body: @Sendable (RethinkSim, RethinkSimEndpoint) async throws -> T
    ) async throws -> T {
        try await RethinkSim(options: options).serving(body)
    }

    // MARK: - Lifecycle

    /// Listens and serves until the calling task is cancelled or `stop()` is called; then closes the
    /// listener and every connection. Each connection is served by a child task of this call. Call once.
    public func run() async throws {
        guard !started else { throw HostError(.invalidRequest, "RethinkSim.run() called twice") }
        started = true
        let shared = self.shared
        let listener: NIOAsyncChannel<AcceptedConnection, Never>
        do {
            listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.autoRead, value: false)  // until served (AcceptedConnection)
                .bind(host: options.host, port: options.port) { channel in
                    shared.connections.register(channel)
                    return AcceptedConnection.initializer(channel)
                }
        } catch {
            let failure = HostError(.io, "RethinkSim cannot listen on \(options.host):\(options.port): \(error)")
            fail(failure)
            throw failure
        }
        let listenerChannel = listener.channel
        didBind(RethinkSimEndpoint(host: options.host, port: listenerChannel.localAddress?.port ?? options.port))
        let stopSignal = self.stopSignal
        let stopContinuation = self.stopContinuation
        let logger = options.logger
        do {
            try await listener.executeThenClose { inbound in
                await withDiscardingTaskGroup { group in
                    group.addTask {
                        // Ends on stop() or cancellation: close the listener, which ends the accept loop.
                        for await _ in stopSignal { break }
                        listenerChannel.close(promise: nil)
                    }
                    do {
                        for try await connection in inbound {
                            group.addTask { await RethinkSimConnection.serve(connection, shared: shared) }
                        }
                    } catch {
                        logger.debug("RethinkSim accept loop ended", metadata: ["error": "\(error)"])
                    }
                    stopContinuation.finish()
                    shared.connections.closeAll()
                    shared.sessions.broadcast(.released)
                    group.cancelAll()
                }
            }
        } catch {
            logger.debug("RethinkSim listener closed with error", metadata: ["error": "\(error)"])
        }
        fail(HostError(.internalError, "RethinkSim stopped"))
    }

    private func didBind(_ endpoint: RethinkSimEndpoint) {
        endpointState.bind(endpoint)
    }

    private func fail(_ error: any Error) {
        endpointState.fail(error)
    }

    /// The listening address; waits until `run()` has bound its socket.
    public func endpoint() async throws -> RethinkSimEndpoint {
        if let bound = endpointState.bound { return bound }
        if let failure = endpointState.failure { throw failure }
        return try await withCheckedThrowingContinuation { endpointState.add($0) }
    }

    /// Makes `run()` return: the listener and every connection are closed.
    public func stop() {
        stopContinuation.finish()
    }

    // MARK: - Data (the same operations queries perform; changefeeds see these writes)

    public func createDatabase(_ name: String) async throws {
        do { try await shared.store.createDatabase(name) } catch { throw Self.hostError(error) }
    }

    public func createTable(_ name: String, database: String, primaryKey: String = "id") async throws {
        do { try await shared.store.createTable(name, database: database, primaryKey: primaryKey) } catch { throw Self.hostError(error) }
    }

    /// Drops a table: its changefeeds end with RUNTIME_ERROR `Changefeed aborted (table unavailable).`.
    public func dropTable(_ name: String, database: String) async throws {
        do { try await shared.store.dropTable(name, database: database) } catch { throw Self.hostError(error) }
    }

    /// Stores whole documents (replacing rows with the same primary key); a missing key is generated.
    public func insert(_ documents: [JSONValue], table: String, database: String) async throws {
        do { try await shared.store.insert(documents, table: table, database: database) } catch { throw Self.hostError(error) }
    }

    /// The table's rows in primary-key order.
    public func documents(table: String, database: String) async throws -> [JSONValue] {
        do { return try await shared.store.documents(table: table, database: database) } catch { throw Self.hostError(error) }
    }

    /// Adds a user or changes a password (new connections authenticate with it).
    public func setUser(_ user: String, password: String) async throws {
        let credential: RethinkSimCredential
        do {
            credential = try RethinkSimCredential(password: password, iterations: options.iterations)
        } catch {
            throw HostError(.invalidRequest, "RethinkSim cannot derive SCRAM keys: \(error)")
        }
        shared.credentials.withLock { $0[user] = credential }
    }

    /// A ReQL error as a ``HostError``: `rethink_schema_missing` for a missing database or table.
    private static func hostError(_ error: any Error) -> any Error {
        guard let failure = error as? ReqlFailure else { return error }
        let code: ErrorCode = failure.message.hasSuffix("does not exist.") ? .rethinkSchemaMissing : .rethinkQueryError
        return HostError(code, failure.message)
    }

    // MARK: - Fault injection

    /// Closes every client connection now; returns how many there were.
    public func dropConnections() async -> Int {
        shared.connections.closeAll()
    }

    /// Simulates a server restart with its data directory: every client connection is closed, new
    /// ones are accepted at once, and for `unavailableFor` (default
    /// ``RethinkSimOptions/restartUnavailableFor``) every query that reads, writes or subscribes to a
    /// table fails with RUNTIME_ERROR `OP_FAILED` "Cannot perform read: primary replica for shard
    /// [\"\", +inf) not available" (writes: "Cannot perform write: …"; changefeeds: "cannot
    /// subscribe to table \`db.t\`: …"), as RethinkDB answers until its tables are ready. The data
    /// is kept. Returns how many connections were closed.
    @discardableResult
    public func restart(unavailableFor: Duration? = nil) async -> Int {
        await shared.store.makeTablesUnavailable(for: unavailableFor ?? options.restartUnavailableFor)
        return shared.connections.closeAll()
    }

    public func simulateRestart() async { await restart() }

    /// Ends a restart's unavailability window now: tables serve again.
    public func makeTablesAvailable() async {
        await shared.store.makeTablesAvailable()
    }

    /// False during a restart's unavailability window.
    public var tablesAvailable: Bool { get async { await shared.store.tablesAvailable } }

    /// While set, every handshake ends with `{"success":false,"error":"Wrong password","error_code":12}`.
    public func setRefuseAuthentication(_ refuse: Bool) async {
        shared.refuseAuthentication.withLock { $0 = refuse }
    }

    /// Queries are accepted but neither evaluated nor answered (nor feed batches sent) until `releaseReplies()`.
    public func stallReplies() async {
        shared.stalled.withLock { $0 = true }
    }

    /// Answers everything held by `stallReplies()`, in order.
    public func releaseReplies() async {
        shared.stalled.withLock { $0 = false }
        shared.sessions.broadcast(.released)
    }

    /// Queries received and held by `stallReplies()`, not yet answered.
    public var stalledQueryCount: Int { get async { shared.heldFrames.withLock { $0 } } }

    /// Client connections currently open (handshaking or authenticated).
    public var openConnections: Int { get async { shared.connections.count } }

    /// Changefeeds currently subscribed.
    public var activeChangefeeds: Int { get async { await shared.store.subscriptionCount } }
}
