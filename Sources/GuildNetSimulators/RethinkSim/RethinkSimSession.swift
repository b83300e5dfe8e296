import GuildNetCore
import GuildNetRethink
import NIOCore

/// What reaches a connection's query loop, in order: frames from the socket, changefeed entries
/// from the store, and the release of stalled replies.
enum RethinkSessionEvent: Sendable {
    case frame(RethinkFrame)
    /// A frame announced `length` bytes, over the limit; answered, then the connection closes.
    case oversized(token: UInt64, length: Int)
    case feed(token: UInt64, subscription: Int, entries: [FeedEntry])
    case feedEnded(token: UInt64, subscription: Int, failure: ReqlFailure)
    case released
}

/// One authenticated connection's queries: START/CONTINUE/STOP/NOREPLY_WAIT/SERVER_INFO by token,
/// paged streams and long-polled changefeeds. Runs in the connection's task only; every response
/// answers exactly one query.
struct RethinkSimSession {
    private enum Cursor {
        /// The rows not sent yet, and the most rows per batch.
        case stream(ArraySlice<JSONValue>, batchRows: Int)
        case feed(FeedCursor)
    }

    private struct FeedCursor {
        var subscription: Int
        /// The most entries per batch (the server's batch size, or the query's `max_batch_rows`).
        var batchRows: Int
        var options: FeedOptions
        var notes: [JSONValue]
        /// The changes waiting for a CONTINUE (a ring: batches leave from the front in O(batch)).
        /// The initial values (and states) not sent yet: read from the table, not queued, so
        /// `changefeed_queue_size` does not bound them.
        var initial: CircularBuffer<FeedEntry>
        /// The changes waiting for a CONTINUE, at most `changefeed_queue_size` (a ring: batches leave
        /// from the front in O(batch); when full, the oldest change is discarded and counted).
        var buffer = CircularBuffer<FeedEntry>()
        /// CONTINUEs waiting for entries (long poll).
        var pending = 0
        /// Entries dropped because the buffer was full; reported in the next batch.
        var skipped = 0
        var ended: ReqlFailure?
        /// The end (or the error) was answered: the cursor is gone.
        var closed = false
    }

    private let shared: RethinkSimShared
    private let events: AsyncStream<RethinkSessionEvent>.Continuation
    private let send: @Sendable (ByteBuffer) async throws -> Void
    private var cursors: [UInt64: Cursor] = [:]
    /// Frames received while replies are stalled, processed in order once released.
    private var held: [RethinkFrame] = []
    /// Feed responses produced while stalled.
    private var outbox: [ByteBuffer] = []

    init(
        shared: RethinkSimShared, events: AsyncStream<RethinkSessionEvent>.Continuation,
        send: @escaping @Sendable (ByteBuffer) async throws -> Void
    ) {
        self.shared = shared
        self.events = events
        self.send = send
    }

    private var batchSize: Int { max(1, shared.options.batchSize) }

    /// The batch size of one query: the server's, or less when the global optarg `max_batch_rows`
    /// (a number ≥ 1) asks for less. Other values are ignored.
    private func batchRows(_ optargs: [String: JSONValue]) -> Int {
        guard let requested = optargs["max_batch_rows"]?.doubleValue, requested >= 1 else { return batchSize }
        return requested >= Double(batchSize) ? batchSize : Int(requested)
    }

    /// Handles one event; returns false when the connection must close.
    mutating func handle(_ event: RethinkSessionEvent) async throws -> Bool {
        if !shared.isStalled { try await drainHeld() }
        switch event {
        case .frame(let frame):
            if shared.isStalled || !held.isEmpty {
                held.append(frame)
                shared.heldFrames.withLock { $0 += 1 }
            } else {
                try await process(frame)
            }
        case .oversized(let token, let length):
            let failure = ReqlFailure.client(
                "Query size (\(length)) greater than maximum (\(shared.options.maxQueryBytes - 1)).", .resourceLimit)
            try await respond(token, RethinkSimResponse.failure(failure))
            return false
        case .feed(let token, let subscription, let entries):
            guard var cursor = takeFeed(token, subscription: subscription) else { return true }
            for entry in entries { Self.append(entry, to: &cursor) }
            try await deliver(token, &cursor)
        case .feedEnded(let token, let subscription, let failure):
            guard var cursor = takeFeed(token, subscription: subscription) else { return true }
            cursor.ended = failure
            try await deliver(token, &cursor)
        case .released:
            break
        }
        return true
    }

    /// Forgets held frames when the connection closes.
    mutating func discardHeld() {
        let count = held.count
        held.removeAll()
        shared.heldFrames.withLock { $0 -= count }
    }

    /// The subscriptions this connection still holds (ended when it closes).
    var subscriptions: [Int] {
        cursors.values.compactMap { cursor in
            if case .feed(let feed) = cursor { return feed.subscription }
            return nil
        }
    }

    private mutating func drainHeld() async throws {
        let waiting = outbox
        outbox.removeAll()
        for buffer in waiting { try await send(buffer) }
        while !held.isEmpty && !shared.isStalled {
            shared.heldFrames.withLock { $0 -= 1 }
            try await process(held.removeFirst())
        }
    }

    private mutating func respond(_ token: UInt64, _ response: JSONValue) async throws {
        let buffer = RethinkSimResponse.frame(token: token, response)
        if shared.isStalled {
            outbox.append(buffer)
        } else {
            try await send(buffer)
        }
    }

    private static func tokenText(_ token: UInt64) -> String { String(Int64(bitPattern: token)) }

    // MARK: - Queries

    private mutating func process(_ frame: RethinkFrame) async throws {
        let token = frame.token
        guard case .array(let parts)? = try? JSONParser.parse(frame.payload), let rawType = parts.first?.intValue else {
            try await respond(token, RethinkSimResponse.failure(.client("Client is buggy (failed to deserialize query).", .resourceLimit)))
            return
        }
        switch RethinkWire.QueryType(rawValue: rawType) {
        case .start:
            try await start(token, parts)
        case .continue:
            try await continueQuery(token)
        case .stop:
            try await stop(token)
        case .noreplyWait:
            try await respond(token, RethinkSimResponse.waitComplete())
        case .serverInfo:
            try await respond(token, RethinkSimResponse.serverInfo(id: shared.serverID, name: shared.options.serverName))
        case nil:
            try await respond(token, RethinkSimResponse.failure(.client("Server could not parse query: Unrecognized QueryType.")))
        }
    }

    private mutating func start(_ token: UInt64, _ parts: [JSONValue]) async throws {
        guard parts.count >= 2 else {
            try await respond(token, RethinkSimResponse.failure(.client("Server could not parse query: Expected a query term.")))
            return
        }
        var optargs: [String: JSONValue] = [:]
        if parts.count > 2 {
            guard case .object(let members) = parts[2] else {
                try await respond(token, RethinkSimResponse.failure(.client("Server could not parse query: Expected global optargs object.")))
                return
            }
            optargs = members
        }
        let noreply = optargs["noreply"].map(ReqlDatum.isTruthy) ?? false
        guard cursors[token] == nil else {
            if !noreply { try await respond(token, RethinkSimResponse.failure(.client("ERROR: duplicate token \(Self.tokenText(token))"))) }
            return
        }
        let term: ReqlTerm
        let database: ReqlTerm?
        do {
            term = try ReqlCompiler.compile(parts[1])
            database = try optargs["db"].map { json throws(ReqlFailure) in try ReqlCompiler.compile(json) }
        } catch {
            if !noreply { try await respond(token, RethinkSimResponse.failure(error)) }
            return
        }
        let sink = noreply ? nil : FeedSink(events: events, token: token)
        let outcome = await shared.store.start(term, database: database, sink: sink)
        if noreply { return }
        switch outcome {
        case .atom(let value):
            try await respond(token, RethinkSimResponse.atom(value))
        case .stream(let rows):
            let limit = batchRows(optargs)
            if rows.count <= limit {
                try await respond(token, RethinkSimResponse.sequence(rows, partial: false))
            } else {
                cursors[token] = .stream(rows.dropFirst(limit), batchRows: limit)
                try await respond(token, RethinkSimResponse.sequence(Array(rows.prefix(limit)), partial: true))
            }
        case .feed(let start):
            // Initial values are read from the table, not queued: `changefeed_queue_size` bounds only
            // the changes that wait for a slow reader.
            var cursor = FeedCursor(
                subscription: start.subscription, batchRows: batchRows(optargs), options: start.options, notes: start.notes,
                initial: CircularBuffer(start.initial))
            let first = takeBatch(&cursor)
            cursors[token] = .feed(cursor)
            try await respond(token, RethinkSimResponse.sequence(first, partial: true, notes: cursor.notes))
        case .failure(let failure):
            try await respond(token, RethinkSimResponse.failure(failure))
        }
    }

    private mutating func continueQuery(_ token: UInt64) async throws {
        switch cursors[token] {
        case nil:
            try await respond(token, RethinkSimResponse.failure(.client("Token \(Self.tokenText(token)) not in stream cache.")))
        case .stream(let rest, let limit):
            let batch = Array(rest.prefix(limit))
            let remaining = rest.dropFirst(limit)
            if remaining.isEmpty {
                cursors[token] = nil
                try await respond(token, RethinkSimResponse.sequence(batch, partial: false))
            } else {
                cursors[token] = .stream(remaining, batchRows: limit)
                try await respond(token, RethinkSimResponse.sequence(batch, partial: true))
            }
        case .feed:
            guard var cursor = takeFeed(token) else { return }
            cursor.pending += 1
            try await deliver(token, &cursor)
        }
    }

    private mutating func stop(_ token: UInt64) async throws {
        switch cursors.removeValue(forKey: token) {
        case nil:
            try await respond(token, RethinkSimResponse.failure(.client("Token \(Self.tokenText(token)) not in stream cache.")))
        case .stream:
            try await respond(token, RethinkSimResponse.sequence([], partial: false))
        case .feed(let cursor):
            await shared.store.unsubscribe([cursor.subscription])
            // The held CONTINUEs and the STOP are each answered with an empty final batch.
            for _ in 0..<cursor.pending { try await respond(token, RethinkSimResponse.sequence([], partial: false)) }
            try await respond(token, RethinkSimResponse.sequence([], partial: false))
        }
    }

    // MARK: - Changefeeds

    /// Takes feed `token`'s cursor out of `cursors`, so changing its buffer never copies it (a
    /// buffer shared with the dictionary would be copied whole on every change: quadratic under a
    /// flood). ``deliver(_:_:)`` puts it back.
    private mutating func takeFeed(_ token: UInt64, subscription: Int? = nil) -> FeedCursor? {
        guard case .feed(let cursor)? = cursors[token], subscription == nil || cursor.subscription == subscription else { return nil }
        cursors[token] = nil
        return cursor
    }

    /// Answers held CONTINUEs of a feed while it has entries (an ended feed answers its error once),
    /// then stores the cursor back under `token` unless it closed, also when sending fails.
    private mutating func deliver(_ token: UInt64, _ cursor: inout FeedCursor) async throws {
        do {
            try await answerHeld(token, &cursor)
        } catch {
            if !cursor.closed { cursors[token] = .feed(cursor) }
            throw error
        }
        if !cursor.closed { cursors[token] = .feed(cursor) }
    }

    private mutating func answerHeld(_ token: UInt64, _ cursor: inout FeedCursor) async throws {
        while cursor.pending > 0 {
            if !cursor.initial.isEmpty || !cursor.buffer.isEmpty || cursor.skipped > 0 {
                cursor.pending -= 1
                let batch = takeBatch(&cursor)
                try await respond(token, RethinkSimResponse.sequence(batch, partial: true, notes: cursor.notes))
            } else if let failure = cursor.ended {
                cursor.closed = true
                try await respond(token, RethinkSimResponse.failure(failure))
                for _ in 1..<cursor.pending {
                    try await respond(token, RethinkSimResponse.failure(.client("Token \(Self.tokenText(token)) not in stream cache.")))
                }
                return
            } else {
                return
            }
        }
    }

    private func takeBatch(_ cursor: inout FeedCursor) -> [JSONValue] {
        var documents: [JSONValue] = []
        if cursor.skipped > 0 {
            documents.append(["error": .string("Changefeed cache over array size limit, skipped \(cursor.skipped) elements.")])
            cursor.skipped = 0
        }
        // The skip notice counts as one of the batch's rows.
        let fromInitial = min(max(0, cursor.batchRows - documents.count), cursor.initial.count)
        documents += cursor.initial.prefix(fromInitial).map { $0.document(includeTypes: cursor.options.includeTypes) }
        cursor.initial.removeFirst(fromInitial)
        let fromChanges = min(max(0, cursor.batchRows - documents.count), cursor.buffer.count)
        documents += cursor.buffer.prefix(fromChanges).map { $0.document(includeTypes: cursor.options.includeTypes) }
        cursor.buffer.removeFirst(fromChanges)
        return documents
    }

    /// Buffers an entry: squashed into an earlier change of the same row when `squash` is set; when
    /// the queue is full the earliest change is discarded (and counted) to make room.
    private static func append(_ entry: FeedEntry, to cursor: inout FeedCursor) {
        if cursor.options.squash, case .change(let key, _, let new) = entry,
            let index = cursor.buffer.lastIndex(where: { if case .change(let other, _, _) = $0 { other == key } else { false } }),
            case .change(_, let firstOld, _) = cursor.buffer[index]
        {
            if firstOld == nil && new == nil {
                cursor.buffer.remove(at: index)
            } else {
                cursor.buffer[index] = .change(key: key, old: firstOld, new: new)
            }
            return
        }
        // RethinkDB discards the earliest changes when the queue is full, and reports how many.
        if cursor.buffer.count >= cursor.options.queueSize {
            cursor.buffer.removeFirst()
            cursor.skipped += 1
        }
        cursor.buffer.append(entry)
    }
}
