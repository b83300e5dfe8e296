import GuildNetCore
import Logging
import NIOCore
import NIOPosix

/// One authenticated TCP connection to a RethinkDB server, shared by many concurrent queries.
///
/// Queries are multiplexed by token (u64, increasing): each START, CONTINUE, NOREPLY_WAIT and
/// SERVER_INFO registers a waiter for its token before the frame is written, and the channel
/// handler routes each response to its waiter. State lives in a lock-protected core rather than an
/// actor because responses are delivered from the event loop, which must never wait.
///
/// When the socket closes, every pending query fails with `rethink_connection_lost` (transient), and
/// so does every later one. ``close()`` closes the socket and frees its descriptor.
public final class RethinkConnection: Sendable {
    /// Connection limits and timeouts.
    public struct Options: Sendable {
        /// The TCP connect timeout; the handshake gets as long again.
        public var connectTimeout: Duration
        /// The largest response frame accepted; a larger one closes the connection (`rethink_protocol_error`).
        public var maxResponseBytes: Int
        /// The largest query frame sent; a larger query fails with `rethink_query_error`.
        public var maxQueryBytes: Int
        public var eventLoopGroup: any EventLoopGroup

        public init(
            connectTimeout: Duration = .seconds(5), maxResponseBytes: Int = 64 << 20, maxQueryBytes: Int = 64 << 20,
            eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
        ) {
            self.connectTimeout = connectTimeout
            self.maxResponseBytes = maxResponseBytes
            self.maxQueryBytes = maxQueryBytes
            self.eventLoopGroup = eventLoopGroup
        }
    }

    public let address: RethinkAddress
    public let user: String
    /// The `server_version` of the handshake hello.
    public let serverVersion: String?
    let channel: any Channel
    let core: RethinkConnectionCore
    let options: Options
    private let logger: Logger

    private init(
        address: RethinkAddress, user: String, serverVersion: String?, channel: any Channel, core: RethinkConnectionCore,
        options: Options, logger: Logger
    ) {
        self.address = address
        self.user = user
        self.serverVersion = serverVersion
        self.channel = channel
        self.core = core
        self.options = options
        self.logger = logger
    }

    deinit {
        channel.close(promise: nil)
    }

    /// Connects and authenticates (V1_0 handshake, SCRAM-SHA-256 with the server signature verified).
    /// - Throws: ``HostError`` `rethink_unreachable` (refused, timeout, DNS), `rethink_auth_failed`,
    ///   `rethink_protocol_error`, `rethink_connection_lost` (closed during the handshake).
    public static func connect(
        to address: RethinkAddress, user: String, password: String, options: Options = Options(),
        logger: Logger = Logger(label: "guildnet.rethink")
    ) async throws -> RethinkConnection {
        let core = RethinkConnectionCore()
        let maxPayload = options.maxResponseBytes
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: options.eventLoopGroup)
                .connectTimeout(TimeAmount(options.connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(RethinkClientDecoder(maxPayload: maxPayload)),
                            RethinkInboundHandler(core: core, address: address))
                    }
                }
                .connect(host: address.host, port: address.port)
                .get()
        } catch {
            throw RethinkError.classifyConnect(error, address: address).hostError
        }
        do {
            try Task.checkCancellation()
            let version = try await withTaskCancellationHandler {
                try await handshake(
                    channel: channel, core: core, address: address, user: user, password: password,
                    timeout: options.connectTimeout)
            } onCancel: {
                channel.close(promise: nil)
            }
            try Task.checkCancellation()
            logger.debug(
                "rethink connection opened",
                metadata: ["address": "\(address)", "user": "\(user)", "server_version": "\(version ?? "?")"])
            return RethinkConnection(
                address: address, user: user, serverVersion: version, channel: channel, core: core, options: options,
                logger: logger)
        } catch {
            core.close(with: RethinkError.connectionLost(reason: "handshake with \(address) failed").hostError)
            try? await channel.close()
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
    }

    private static func handshake(
        channel: any Channel, core: RethinkConnectionCore, address: RethinkAddress, user: String, password: String,
        timeout: Duration
    ) async throws -> String? {
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            core.close(with: RethinkError.unreachable(address: "\(address)", reason: "handshake timed out").hostError)
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        var handshake = RethinkHandshake(user: user, password: password)
        do {
            try await channel.writeAndFlush(channel.allocator.buffer(bytes: handshake.initialBytes()))
            let version = try handshake.checkHello(try await core.nextHandshakeMessage())
            let final = try handshake.clientFinal(serverFirst: try await core.nextHandshakeMessage())
            try await channel.writeAndFlush(channel.allocator.buffer(bytes: final))
            try handshake.verifyServerFinal(try await core.nextHandshakeMessage())
            return version
        } catch let error as RethinkError {
            throw error.hostError
        } catch let error as HostError {
            throw error
        } catch {
            throw core.failure
                ?? RethinkError.connectionLost(reason: "connection to \(address) failed during the handshake: \(error)")
                .hostError
        }
    }

    // MARK: State

    /// `true` until the socket closed or failed.
    public var isOpen: Bool { core.failure == nil && channel.isActive }

    /// Why the connection closed, if it did.
    public var closeReason: HostError? { core.failure }

    /// Queries waiting for a response right now (the pool's load measure).
    public var pendingQueries: Int { core.pendingCount }

    /// Closes the socket; pending queries fail with `rethink_connection_lost`. Idempotent.
    public func close() async {
        core.close(with: RethinkError.connectionLost(reason: "connection to \(address) closed by the client").hostError)
        try? await channel.close()
        logger.debug("rethink connection closed", metadata: ["address": "\(address)"])
    }

    // MARK: Queries

    /// Sends START and returns the atom, or a cursor over the sequence or changefeed.
    /// - Parameters:
    ///   - db: the default database (global optarg `db`).
    ///   - timeout: how long to wait for each response; a feed's CONTINUEs never time out (long poll).
    ///   - maxBatchRows: the most rows per response (global optarg `max_batch_rows`; the server's
    ///     default otherwise). Smaller batches cost more round trips but keep each response's decoding short.
    public func start(_ term: ReQL, db: String? = nil, timeout: Duration? = nil, maxBatchRows: Int? = nil) async throws -> RethinkResult {
        let token = core.allocateToken()
        let query = Self.startQuery(term, db: db, noreply: false, maxBatchRows: maxBatchRows)
        let response = try await roundTrip(token: token, query: query, timeout: timeout)
        if let error = response.error { throw error.hostError }
        switch response.type {
        case .successAtom:
            return .atom(response.results.first ?? .null)
        case .successSequence, .successPartial:
            return .cursor(
                RethinkCursor(connection: self, token: token, first: response, continueTimeout: response.isFeed ? nil : timeout))
        default:
            throw RethinkError.protocolViolation(reason: "unexpected response type \(response.type.rawValue) to START").hostError
        }
    }

    /// Runs `term` to completion: an atom as is, a sequence collected into an array.
    /// - Throws: `rethink_query_error` for a changefeed (it never ends) or more than `maxRows` rows.
    public func run(_ term: ReQL, db: String? = nil, timeout: Duration? = nil, maxRows: Int = .max) async throws -> JSONValue {
        switch try await start(term, db: db, timeout: timeout) {
        case .atom(let value):
            return value
        case .cursor(let cursor):
            if cursor.isFeed {
                cursor.close()
                throw RethinkError.query(
                    message: "a changefeed never completes; use a cursor or a subscription", responseType: .clientError,
                    errorType: nil
                ).hostError
            }
            return .array(try await cursor.collect(maxRows: maxRows))
        }
    }

    /// Starts `term` and returns a cursor over its rows (an atom array yields its elements, any other
    /// atom yields itself once). `maxBatchRows` as for ``start(_:db:timeout:maxBatchRows:)``.
    public func cursor(_ term: ReQL, db: String? = nil, timeout: Duration? = nil, maxBatchRows: Int? = nil) async throws -> RethinkCursor {
        switch try await start(term, db: db, timeout: timeout, maxBatchRows: maxBatchRows) {
        case .atom(let value): RethinkCursor(atom: value, connection: self)
        case .cursor(let cursor): cursor
        }
    }

    /// Sends START with `noreply`: the server answers nothing; see ``noreplyWait(timeout:)``.
    public func runNoreply(_ term: ReQL, db: String? = nil) async throws {
        let payload = Self.startQuery(term, db: db, noreply: true).serialized
        try checkSize(payload)
        do {
            try await channel.writeAndFlush(frame(token: core.allocateToken(), payload: payload))
        } catch {
            throw core.failure ?? RethinkError.connectionLost(reason: "cannot send to \(address): \(error)").hostError
        }
    }

    /// NOREPLY_WAIT: returns once every earlier noreply query has finished.
    public func noreplyWait(timeout: Duration? = nil) async throws {
        let response = try await roundTrip(token: core.allocateToken(), query: [4], timeout: timeout)
        if let error = response.error { throw error.hostError }
        guard response.type == .waitComplete else {
            throw RethinkError.protocolViolation(reason: "unexpected response type \(response.type.rawValue) to NOREPLY_WAIT")
                .hostError
        }
    }

    /// SERVER_INFO: `{"id":…,"name":…,"proxy":…}`.
    public func serverInfo(timeout: Duration? = nil) async throws -> JSONValue {
        let response = try await roundTrip(token: core.allocateToken(), query: [5], timeout: timeout)
        if let error = response.error { throw error.hostError }
        guard response.type == .serverInfo, let info = response.results.first else {
            throw RethinkError.protocolViolation(reason: "unexpected response type \(response.type.rawValue) to SERVER_INFO")
                .hostError
        }
        return info
    }

    // MARK: Wire

    static func startQuery(_ term: ReQL, db: String?, noreply: Bool, maxBatchRows: Int? = nil) -> JSONValue {
        var global: [String: JSONValue] = [:]
        if let db { global["db"] = ReQL.db(db).wire }
        if noreply { global["noreply"] = true }
        if let maxBatchRows { global["max_batch_rows"] = .int(Int64(max(1, maxBatchRows))) }
        return [.int(RethinkWire.QueryType.start.rawValue), term.wire, .object(global)]
    }

    /// Sends `query` under `token` and waits for its response (or the timeout, cancellation, or loss).
    func roundTrip(token: UInt64, query: JSONValue, timeout: Duration?) async throws -> RethinkResponse {
        let payload = query.serialized
        try checkSize(payload)
        let core = self.core
        let address = self.address
        let bytes: [UInt8] = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: RethinkConnectionCore.Reply) in
                guard core.register(token: token, continuation: continuation) else { return }
                if Task.isCancelled {
                    core.fail(token: token, with: CancellationError())
                    return
                }
                channel.writeAndFlush(frame(token: token, payload: payload)).whenFailure { error in
                    core.fail(
                        token: token,
                        with: core.failure ?? RethinkError.connectionLost(reason: "cannot send to \(address): \(error)").hostError)
                }
                if let timeout {
                    let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                        core.fail(token: token, with: RethinkError.timeout(what: "RethinkDB query", after: timeout).hostError)
                    }
                    core.attach(timeout: timer, to: token)
                }
            }
        } onCancel: {
            core.fail(token: token, with: CancellationError())
        }
        do {
            return try RethinkResponse(payload: bytes)
        } catch {
            throw error.hostError
        }
    }

    /// Writes STOP for `token` without waiting for its answer (a cursor dropped or cancelled early).
    func sendStop(token: UInt64) {
        guard core.failure == nil else { return }
        let payload: JSONValue = [.int(RethinkWire.QueryType.stop.rawValue)]
        channel.writeAndFlush(frame(token: token, payload: payload.serialized), promise: nil)
    }

    private func frame(token: UInt64, payload: [UInt8]) -> ByteBuffer {
        var buffer = channel.allocator.buffer(capacity: RethinkWire.frameHeaderSize + payload.count)
        RethinkFrame(token: token, payload: payload).write(into: &buffer)
        return buffer
    }

    private func checkSize(_ payload: [UInt8]) throws {
        guard payload.count <= options.maxQueryBytes else {
            throw RethinkError.query(
                message: "query of \(payload.count) bytes exceeds the limit of \(options.maxQueryBytes)",
                responseType: .clientError, errorType: nil
            ).hostError
        }
    }
}

/// What a START returns.
public enum RethinkResult: Sendable {
    case atom(JSONValue)
    case cursor(RethinkCursor)
}
