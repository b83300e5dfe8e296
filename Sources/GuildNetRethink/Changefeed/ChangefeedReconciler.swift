import GuildNetCore

/// Turns a feed's raw documents into subscriber events and reconciles after a gap.
///
/// The feed always runs with `include_initial` and `include_states`, so the reconciler knows the
/// current rows (its mirror, keyed by the primary key; a row without one is keyed by itself).
/// - First subscription: initial rows update the mirror and reach the subscriber only if it asked
///   for `include_initial`; state documents only if it asked for `include_states`.
/// - After ``beginResume()`` (a new subscription following a gap): each initial row is compared with
///   the mirror and emitted as `.change(old: last known, new: current)` when it differs (`old` nil when
///   unknown); at `ready`, every mirrored row the server no longer returned is emitted as
///   `.change(old: row, new: nil)`, then `.resumed`. State documents are not forwarded.
/// - Live changes are applied to the mirror and forwarded as they are.
struct ChangefeedReconciler {
    let primaryKey: String
    let forwardInitial: Bool
    let forwardStates: Bool

    private(set) var resuming = false
    private(set) var initializing = true
    private(set) var mirror: [JSONValue: JSONValue] = [:]
    private var seen: Set<JSONValue> = []

    init(primaryKey: String, forwardInitial: Bool, forwardStates: Bool) {
        self.primaryKey = primaryKey
        self.forwardInitial = forwardInitial
        self.forwardStates = forwardStates
    }

    /// A new subscription starts after a gap: its initial rows are reconciled against the mirror.
    mutating func beginResume() {
        resuming = true
        initializing = true
        seen = []
    }

    /// The events for one document of the feed.
    mutating func process(_ item: JSONValue) -> [ChangefeedEvent] {
        guard let object = item.objectValue else { return [] }
        if let state = object["state"]?.stringValue {
            return processState(state)
        }
        guard object["old_val"] != nil || object["new_val"] != nil else { return [] }
        let old = Self.row(object["old_val"])
        let new = Self.row(object["new_val"])
        if initializing && object["old_val"] == nil {
            return processInitial(new)
        }
        if old == nil && new == nil { return [] }
        if let old { mirror[key(of: old)] = nil }
        if let new {
            let key = key(of: new)
            mirror[key] = new
            if initializing { seen.insert(key) }
        }
        return [.change(old: old, new: new)]
    }

    private mutating func processInitial(_ row: JSONValue?) -> [ChangefeedEvent] {
        guard let row else { return [] }
        let key = key(of: row)
        seen.insert(key)
        let previous = mirror.updateValue(row, forKey: key)
        if resuming {
            return previous == row ? [] : [.change(old: previous, new: row)]
        }
        return forwardInitial ? [.change(old: nil, new: row)] : []
    }

    private mutating func processState(_ state: String) -> [ChangefeedEvent] {
        guard state == "ready", initializing else {
            return forwardStates && !resuming ? [.state(state)] : []
        }
        initializing = false
        defer { seen = [] }
        guard resuming else {
            return forwardStates ? [.state(state)] : []
        }
        resuming = false
        var events: [ChangefeedEvent] = []
        let vanished = mirror.keys.filter { !seen.contains($0) }.sorted { $0.jsonString < $1.jsonString }
        for key in vanished {
            if let row = mirror.removeValue(forKey: key) { events.append(.change(old: row, new: nil)) }
        }
        events.append(.resumed)
        return events
    }

    /// A row value: absent and JSON null are both "no row" (`Optional.none`, never `.some(.null)`).
    static func row(_ value: JSONValue?) -> JSONValue? {
        guard let value, value != .null else { return Optional.none }
        return value
    }

    func key(of row: JSONValue) -> JSONValue {
        row[primaryKey] ?? row
    }
}
