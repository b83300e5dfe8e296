import GuildNetCore

/// What a START query produced.
enum StartOutcome: Sendable {
    case atom(JSONValue)
    /// A stream, answered in batches.
    case stream([JSONValue])
    case feed(FeedStart)
    case failure(ReqlFailure)
}

/// Where a changefeed's entries go: the owning connection's event stream, tagged with the query token.
struct FeedSink: Sendable {
    let events: AsyncStream<RethinkSessionEvent>.Continuation
    let token: UInt64
}

/// Owns the data and the changefeed subscriptions. Every query is evaluated in one actor turn
/// (queries are atomic), then its row changes go to the feeds that see them, in order.
actor RethinkSimStore {
    private struct Subscription {
        var request: FeedRequest
        var sink: FeedSink
    }

    private var data: RethinkData
    private var subscriptions: [Int: Subscription] = [:]
    private var nextSubscription = 1
    private var availability = RethinkSimAvailability()

    init(serverName: String) {
        data = RethinkData(serverName: serverName)
    }

    var subscriptionCount: Int { subscriptions.count }

    /// Evaluates a compiled query; a feed is subscribed (to `sink`) before any later write can happen.
    func start(_ term: ReqlTerm, database: ReqlTerm?, sink: FeedSink?) -> StartOutcome {
        let outcome: StartOutcome
        do {
            var scope = ReqlScope(defaultDatabase: "test")
            if let database {
                let value = try data.evaluate(database, scope)
                guard case .database(let name) = value else { throw ReqlFailure.expected("DATABASE", found: value.typeName) }
                scope.defaultDatabase = name
            }
            if availability.tablesUnavailable(),
                let failure = RethinkSimAvailability.failure(for: term, tableName: { [scope] table in tableName(table, scope) })
            {
                throw failure
            }
            outcome = try result(of: try data.evaluate(term, scope), sink: sink)
        } catch let failure as ReqlFailure {
            outcome = .failure(failure)
        } catch {
            outcome = .failure(.runtime(.internal, "Unexpected exception: \(error)"))
        }
        dispatch()
        return outcome
    }

    private func result(of value: ReqlValue, sink: FeedSink?) throws -> StartOutcome {
        switch value {
        case .datum(let datum):
            return .atom(datum)
        case .single(let single):
            return .atom(single.doc ?? .null)
        case .sequence(let sequence):
            return sequence.isArray ? .atom(.array(sequence.rows)) : .stream(sequence.rows)
        case .table(let table):
            return .stream(data.rows(of: table))
        case .feed(let request):
            let initial = data.initialEntries(request)
            let id = nextSubscription
            nextSubscription += 1
            if let sink { subscriptions[id] = Subscription(request: request, sink: sink) }
            let notes = FeedEntry.notes(isPoint: request.source.isPoint, includeStates: request.options.includeStates)
            return .feed(FeedStart(subscription: id, initial: initial, options: request.options, notes: notes))
        case .database, .function:
            throw ReqlFailure.logic("Query result must be of type DATUM, GROUPED_DATA, or STREAM (got \(value.typeName)).")
        }
    }

    /// `db.name` of a `table` term, when it names an existing table (evaluating it changes nothing).
    private func tableName(_ table: ReqlTerm, _ scope: ReqlScope) -> String? {
        guard case .table(let ref)? = try? data.evaluate(table, scope) else { return nil }
        return "\(ref.db).\(ref.name)"
    }

    /// Tables answer `OP_FAILED` "primary replica … not available" for `duration` (a restart).
    func makeTablesUnavailable(for duration: Duration) {
        availability.makeUnavailable(for: duration)
    }

    /// Ends the window of ``makeTablesUnavailable(for:)`` now.
    func makeTablesAvailable() {
        availability.makeAvailable()
    }

    var tablesAvailable: Bool { !availability.tablesUnavailable() }

    /// Ends subscriptions (STOP, connection closed).
    func unsubscribe(_ ids: [Int]) {
        for id in ids { subscriptions[id] = nil }
    }

    /// Hands the recorded changes to the feeds that see them, and ends feeds on dropped tables.
    private func dispatch() {
        let changes = data.changes
        let dropped = data.droppedTableIDs
        data.changes = []
        data.droppedTableIDs = []
        guard !changes.isEmpty || !dropped.isEmpty else { return }
        for id in subscriptions.keys.sorted() {
            guard let subscription = subscriptions[id] else { continue }
            let source = subscription.request.source
            var entries: [FeedEntry] = []
            for change in changes where change.tableID == source.table.id {
                if let entry = data.feedEntry(for: change, source: source) { entries.append(entry) }
            }
            if !entries.isEmpty {
                subscription.sink.events.yield(.feed(token: subscription.sink.token, subscription: id, entries: entries))
            }
            if dropped.contains(source.table.id) {
                subscriptions[id] = nil
                subscription.sink.events.yield(
                    .feedEnded(token: subscription.sink.token, subscription: id, failure: .opFailed("Changefeed aborted (table unavailable).")))
            }
        }
    }

    // MARK: - Direct access (RethinkSim's public API)

    func createDatabase(_ name: String) throws {
        defer { dispatch() }
        _ = try data.createDatabase(name)
    }

    func createTable(_ name: String, database: String, primaryKey: String) throws {
        defer { dispatch() }
        _ = try data.createTable(name, database: database, primaryKey: primaryKey)
    }

    func dropTable(_ name: String, database: String) throws {
        defer { dispatch() }
        _ = try data.dropTable(name, database: database)
    }

    /// Inserts (or replaces) whole documents; a missing primary key gets a generated UUID.
    func insert(_ documents: [JSONValue], table: String, database: String) throws {
        defer { dispatch() }
        let ref = try data.tableRef(database, table)
        for document in documents {
            guard case .object(var members) = ReqlDatum.normalize(document) else {
                throw ReqlFailure.expected("OBJECT", found: ReqlDatum.typeName(document))
            }
            let key = members[ref.primaryKey] ?? .string(RethinkData.makeID())
            members[ref.primaryKey] = key
            data.write(ref, key: key, old: data.table(ref)?[key], new: .object(members))
        }
    }

    func documents(table: String, database: String) throws -> [JSONValue] {
        data.rows(of: try data.tableRef(database, table))
    }
}
