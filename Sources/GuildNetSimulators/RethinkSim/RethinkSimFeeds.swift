import GuildNetCore
import GuildNetRethink

/// Which rows of a table a changefeed watches.
enum FeedSelector: Sendable {
    case all
    /// `get(key).changes()`.
    case point(JSONValue)
    /// `get_all(keys…, index:)`; `index` nil means the primary key.
    case keys([JSONValue], index: String?)
}

/// A filter predicate: a function, or a literal (an object matches field by field).
enum FeedPredicate: Sendable {
    case function(ReqlFunction)
    case literal(JSONValue)
}

/// A transformation between the table and `changes`, applied to `old_val` and `new_val` alike.
enum FeedOp: Sendable {
    case filter(FeedPredicate)
    case pluck([JSONValue])
}

/// What a changefeed watches: a table, a selector, and transformations.
struct FeedSource: Sendable {
    var table: ReqlTableRef
    var selector: FeedSelector
    var ops: [FeedOp] = []

    var isPoint: Bool {
        if case .point = selector { return true }
        return false
    }
}

/// `changes` optional arguments.
struct FeedOptions: Sendable {
    var includeInitial = false
    var includeStates = false
    var includeTypes = false
    var squash = false
    var queueSize = 100_000
}

/// The value of a `changes` term.
struct FeedRequest: Sendable {
    var source: FeedSource
    var options: FeedOptions
}

/// One element of a changefeed before it is rendered.
enum FeedEntry: Sendable, Equatable {
    case change(key: JSONValue, old: JSONValue?, new: JSONValue?)
    case initial(JSONValue?)
    case state(String)

    /// RethinkDB's change document: `{"old_val","new_val"}`, `{"new_val"}` for initial rows,
    /// `{"state"}`, each with `"type"` when `include_types` is set.
    func document(includeTypes: Bool) -> JSONValue {
        var members: [String: JSONValue]
        let type: String
        switch self {
        case .change(_, let old, let new):
            members = ["old_val": old ?? .null, "new_val": new ?? .null]
            type = old == nil ? "add" : (new == nil ? "remove" : "change")
        case .initial(let doc):
            members = ["new_val": doc ?? .null]
            type = "initial"
        case .state(let state):
            members = ["state": .string(state)]
            type = "state"
        }
        if includeTypes { members["type"] = .string(type) }
        return .object(members)
    }

    /// Response notes of a feed: SEQUENCE_FEED or ATOM_FEED, plus INCLUDES_STATES.
    static func notes(isPoint: Bool, includeStates: Bool) -> [JSONValue] {
        var notes: [JSONValue] = [.int(isPoint ? RethinkWire.ResponseNote.atomFeed.rawValue : RethinkWire.ResponseNote.sequenceFeed.rawValue)]
        if includeStates { notes.append(.int(RethinkWire.ResponseNote.includesStates.rawValue)) }
        return notes
    }
}

/// What the first response of a feed needs: its subscription, first entries and rendering options.
struct FeedStart: Sendable {
    var subscription: Int
    var initial: [FeedEntry]
    var options: FeedOptions
    var notes: [JSONValue]
}

extension RethinkData {
    /// The `changes` term: a feed request over a table, `get`, `get_all`, `filter` or `pluck` of a table.
    mutating func changesTerm(_ args: [ReqlTerm], _ optargs: [String: ReqlTerm], _ scope: ReqlScope) throws -> ReqlValue {
        let value = try evaluate(args[0], scope)
        var options = FeedOptions()
        options.includeInitial = try optionalBool(optargs["include_initial"], scope) ?? false
        options.includeStates = try optionalBool(optargs["include_states"], scope) ?? false
        options.includeTypes = try optionalBool(optargs["include_types"], scope) ?? false
        if try optionalBool(optargs["include_offsets"], scope) == true {
            throw ReqlFailure.logic("Cannot include offsets for range subscriptions.")
        }
        if let squash = optargs["squash"] {
            switch try datum(squash, scope) {
            case .bool(let flag): options.squash = flag
            case .int, .double: options.squash = true
            case let other: throw ReqlFailure.expected("BOOL or NUMBER", found: ReqlDatum.typeName(other))
            }
        }
        if let size = optargs["changefeed_queue_size"] {
            let number = try integer(size, scope)
            guard number >= 1 else { throw ReqlFailure.logic("Changefeed queue size must be at least 1 (got \(number)).") }
            options.queueSize = Int(clamping: number)
        }
        switch value {
        case .table(let table):
            return .feed(FeedRequest(source: FeedSource(table: table, selector: .all), options: options))
        case .single(let single):
            return .feed(FeedRequest(source: FeedSource(table: single.table, selector: .point(single.key)), options: options))
        case .sequence(let sequence):
            guard let source = sequence.feed else {
                throw ReqlFailure.logic(
                    "RethinkSim supports `changes` on a table, `get`, `get_all`, `filter` and `pluck` (found \(value.typeName)).")
            }
            return .feed(FeedRequest(source: source, options: options))
        default:
            throw ReqlFailure.expected("SEQUENCE", found: value.typeName)
        }
    }

    /// The entries a new feed starts with (initial rows and states, as requested).
    mutating func initialEntries(_ request: FeedRequest) -> [FeedEntry] {
        var entries: [FeedEntry] = []
        if request.options.includeStates { entries.append(.state("initializing")) }
        if request.options.includeInitial {
            let source = request.source
            if case .point(let key) = source.selector {
                entries.append(.initial(table(source.table)?[key]))
            } else {
                for row in rows(of: source.table) {
                    if let projected = project(row, source) { entries.append(.initial(projected)) }
                }
            }
        }
        if request.options.includeStates { entries.append(.state("ready")) }
        return entries
    }

    /// The feed entry a recorded change makes for `source`, or nil when the feed does not see it.
    mutating func feedEntry(for change: RecordedChange, source: FeedSource) -> FeedEntry? {
        guard change.tableID == source.table.id else { return nil }
        if case .point(let key) = source.selector {
            guard ReqlDatum.equal(key, change.key) else { return nil }
            return .change(key: change.key, old: change.old, new: change.new)
        }
        let old = change.old.flatMap { project($0, source) }
        let new = change.new.flatMap { project($0, source) }
        if old == nil && new == nil { return nil }
        return .change(key: change.key, old: old, new: new)
    }

    /// A row as the feed sees it: nil when the selector or a filter excludes it, else transformed.
    private mutating func project(_ row: JSONValue, _ source: FeedSource) -> JSONValue? {
        switch source.selector {
        case .all, .point:
            break
        case .keys(let keys, let index):
            let values: [JSONValue]
            if let index, index != source.table.primaryKey {
                guard let spec = table(source.table)?.indexes[index] else { return nil }
                values = indexValues(row, spec)
            } else {
                values = row[source.table.primaryKey].map { [$0] } ?? []
            }
            guard values.contains(where: { value in keys.contains { ReqlDatum.equal($0, value) } }) else { return nil }
        }
        var current = row
        for op in source.ops {
            switch op {
            case .filter(let predicate):
                // Errors in a feed's predicate exclude the row, like filter's default `false`.
                guard (try? predicateMatches(current, predicate, defaultTerm: nil, .init(defaultDatabase: "test"))) == true else {
                    return nil
                }
            case .pluck(let selectors):
                current = ReqlPluck.pluck(current, selectors)
            }
        }
        return current
    }
}
