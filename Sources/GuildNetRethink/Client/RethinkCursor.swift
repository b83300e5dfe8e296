import GuildNetCore

/// The rows of a sequence or changefeed, fetched batch by batch.
///
/// After the first batch, each exhausted SUCCESS_PARTIAL batch sends CONTINUE; SUCCESS_SEQUENCE ends
/// the cursor. A cursor that is dropped, ``close()``d or whose consuming task is cancelled before the
/// end sends STOP. A feed's CONTINUE waits without a timeout (the server long-polls).
/// One consumer at a time: concurrent iteration of one cursor is not supported.
public struct RethinkCursor: AsyncSequence, Sendable {
    public typealias Element = JSONValue

    let state: RethinkCursorState

    init(connection: RethinkConnection, token: UInt64, first: RethinkResponse, continueTimeout: Duration?) {
        state = RethinkCursorState(
            connection: connection, token: token, rows: first.results, finished: first.type != .successPartial,
            isFeed: first.isFeed, continueTimeout: continueTimeout)
    }

    init(atom: JSONValue, connection: RethinkConnection) {
        state = RethinkCursorState(
            connection: connection, token: nil, rows: atom.arrayValue ?? [atom], finished: true, isFeed: false,
            continueTimeout: nil)
    }

    /// `true` for a changefeed (the response notes said so): it never ends on its own.
    public var isFeed: Bool { state.isFeed }

    /// The query token (`nil` for an atom).
    public var token: UInt64? { state.token }

    /// The connection the cursor reads from.
    public var connection: RethinkConnection { state.connection }

    /// Responses received so far (the first one included): how many batches the rows came in.
    public var batchesReceived: Int { state.batchesReceived }

    /// Stops the cursor: sends STOP unless it already ended; later `next()` calls return `nil`.
    public func close() {
        state.stop()
    }

    /// Reads every remaining row.
    /// - Throws: `rethink_query_error` after `maxRows` rows (the cursor is stopped).
    public func collect(maxRows: Int = .max) async throws -> [JSONValue] {
        var rows: [JSONValue] = []
        for try await row in self {
            guard rows.count < maxRows else {
                close()
                throw RethinkError.query(
                    message: "the result has more than \(maxRows) rows; use a cursor or limit()", responseType: .clientError,
                    errorType: nil
                ).hostError
            }
            rows.append(row)
        }
        return rows
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(state: state)
    }

    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let state: RethinkCursorState

        public mutating func next() async throws -> JSONValue? {
            try await state.next()
        }
    }
}

/// The batches of one cursor; its `deinit` sends STOP for a cursor dropped before its end.
final class RethinkCursorState: Sendable {
    let connection: RethinkConnection
    let token: UInt64?
    let isFeed: Bool
    let continueTimeout: Duration?

    private struct Rows: Sendable {
        var batch: [JSONValue]
        var index = 0
        var finished: Bool
        var batches = 1
    }

    private let rows: LockedValue<Rows>

    var batchesReceived: Int { rows.withLock { $0.batches } }

    init(
        connection: RethinkConnection, token: UInt64?, rows: [JSONValue], finished: Bool, isFeed: Bool,
        continueTimeout: Duration?
    ) {
        self.connection = connection
        self.token = token
        self.isFeed = isFeed
        self.continueTimeout = continueTimeout
        self.rows = LockedValue(Rows(batch: rows, finished: finished))
    }

    deinit {
        stop()
    }

    private enum Step {
        case row(JSONValue)
        case end
        case fetch(UInt64)
    }

    func next() async throws -> JSONValue? {
        while true {
            let step: Step = rows.withLock { rows in
                if rows.index < rows.batch.count {
                    defer { rows.index += 1 }
                    return .row(rows.batch[rows.index])
                }
                guard !rows.finished, let token else { return .end }
                return .fetch(token)
            }
            switch step {
            case .row(let row):
                return row
            case .end:
                return nil
            case .fetch(let token):
                try await fetch(token: token)
            }
        }
    }

    private func fetch(token: UInt64) async throws {
        let response: RethinkResponse
        do {
            response = try await connection.roundTrip(
                token: token, query: [.int(RethinkWire.QueryType.continue.rawValue)], timeout: continueTimeout)
        } catch {
            // Cancelled or timed out: the server still holds the stream, so stop it. Lost: nothing to stop.
            stop()
            throw error
        }
        if let error = response.error {
            markFinished()
            throw error.hostError
        }
        switch response.type {
        case .successPartial, .successSequence:
            rows.withLock { rows in
                guard !rows.finished else { return }
                rows.batches += 1
                rows.batch = response.results
                rows.index = 0
                rows.finished = response.type == .successSequence
            }
        default:
            stop()
            throw RethinkError.protocolViolation(reason: "unexpected response type \(response.type.rawValue) to CONTINUE")
                .hostError
        }
    }

    private func markFinished() {
        rows.withLock { rows in
            rows.finished = true
            rows.batch = []
            rows.index = 0
        }
    }

    /// Ends the cursor; sends STOP when the server still holds the stream.
    func stop() {
        let wasOpen = rows.withLock { rows in
            defer {
                rows.finished = true
                rows.batch = []
                rows.index = 0
            }
            return !rows.finished
        }
        if wasOpen, let token {
            connection.sendStop(token: token)
        }
    }
}
