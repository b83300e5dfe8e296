import GuildNetRethink

/// A restarted RethinkDB server accepts connections a moment before its tables are ready; until
/// then every query that reads, writes or subscribes to a table fails with a RUNTIME_ERROR of type
/// `OP_FAILED` and RethinkDB's message (the drivers raise `ReqlOpFailedError`). Databases, table
/// lists and server info still answer.
struct RethinkSimAvailability: Sendable {
    /// Until this instant the tables are not available; nil when they are.
    private var unavailableUntil: ContinuousClock.Instant?

    static let shardMessage = "primary replica for shard [\"\", +inf) not available"

    mutating func makeUnavailable(for duration: Duration) {
        unavailableUntil = ContinuousClock.now + duration
    }

    mutating func makeAvailable() {
        unavailableUntil = nil
    }

    /// True while the tables are not ready (and forgets a window that has passed).
    mutating func tablesUnavailable() -> Bool {
        guard let until = unavailableUntil else { return false }
        if ContinuousClock.now >= until {
            unavailableUntil = nil
            return false
        }
        return true
    }

    /// The failure RethinkDB answers to `term` while its tables are unavailable, or nil when the
    /// term touches no table. `tableName` evaluates a `table` term to `db.name` (nil when it does not
    /// name an existing table: the query then fails as it would anyway).
    static func failure(for term: ReqlTerm, tableName: (ReqlTerm) -> String?) -> ReqlFailure? {
        guard let table = find(term, { $0 == .wire(.table) }) else { return nil }
        if find(term, { $0 == .wire(.changes) }) != nil {
            guard let name = tableName(table) else { return nil }
            return .opFailed("cannot subscribe to table `\(name)`: \(shardMessage)")
        }
        let writes: Set<ReqlOp> = [.wire(.insert), .wire(.update), .wire(.replace), .wire(.delete)]
        if find(term, { writes.contains($0) }) != nil {
            return .opFailed("Cannot perform write: \(shardMessage)")
        }
        return .opFailed("Cannot perform read: \(shardMessage)")
    }

    /// The first term (depth first) whose operation matches.
    private static func find(_ term: ReqlTerm, _ matches: (ReqlOp) -> Bool) -> ReqlTerm? {
        switch term {
        case .datum:
            return nil
        case .object(let members):
            for key in members.keys.sorted() {
                if let member = members[key], let found = find(member, matches) { return found }
            }
            return nil
        case .op(let op, let args, let optargs):
            if matches(op) { return term }
            for arg in args {
                if let found = find(arg, matches) { return found }
            }
            for key in optargs.keys.sorted() {
                if let optarg = optargs[key], let found = find(optarg, matches) { return found }
            }
            return nil
        case .function(_, let body):
            return find(body, matches)
        }
    }
}
