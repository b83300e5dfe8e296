import GuildNetCore

/// ReQL datum rules on ``JSONValue``: number normalisation, RethinkDB's total order, truthiness,
/// the deep merge of `update`, and RethinkDB's pretty printing used in error messages.
enum ReqlDatum {
    /// RethinkDB numbers are doubles; integral values become `.int` so equal numbers hash equally.
    static func normalize(_ value: JSONValue) -> JSONValue {
        switch value {
        case .double(let number):
            if number.isFinite, number.rounded() == number, abs(number) < 9.007_199_254_740_992e15 { return .int(Int64(number)) }
            return value
        case .array(let elements): return .array(elements.map(normalize))
        case .object(let members): return .object(members.mapValues(normalize))
        default: return value
        }
    }

    /// The type name RethinkDB uses in messages (`Expected type OBJECT but found NUMBER.`).
    static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: "NULL"
        case .bool: "BOOL"
        case .int, .double: "NUMBER"
        case .string: "STRING"
        case .array: "ARRAY"
        case .object: "OBJECT"
        }
    }

    /// Types order alphabetically by name: ARRAY < BOOL < NULL < NUMBER < OBJECT < STRING.
    private static func rank(_ value: JSONValue) -> Int {
        switch value {
        case .array: 0
        case .bool: 1
        case .null: 2
        case .int, .double: 3
        case .object: 4
        case .string: 5
        }
    }

    /// RethinkDB's total order: -1, 0 or 1.
    static func compare(_ a: JSONValue, _ b: JSONValue) -> Int {
        let (rankA, rankB) = (rank(a), rank(b))
        if rankA != rankB { return rankA < rankB ? -1 : 1 }
        switch (a, b) {
        case (.bool(let x), .bool(let y)):
            return x == y ? 0 : (!x ? -1 : 1)
        case (.int(let x), .int(let y)):
            return x == y ? 0 : (x < y ? -1 : 1)
        case (.string(let x), .string(let y)):
            if x == y { return 0 }
            return x.utf8.lexicographicallyPrecedes(y.utf8) ? -1 : 1
        case (.array(let x), .array(let y)):
            for (left, right) in zip(x, y) {
                let order = compare(left, right)
                if order != 0 { return order }
            }
            return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
        case (.object(let x), .object(let y)):
            let keysX = x.keys.sorted { compare(.string($0), .string($1)) < 0 }
            let keysY = y.keys.sorted { compare(.string($0), .string($1)) < 0 }
            for (keyX, keyY) in zip(keysX, keysY) {
                let keyOrder = compare(.string(keyX), .string(keyY))
                if keyOrder != 0 { return keyOrder }
                let order = compare(x[keyX] ?? .null, y[keyY] ?? .null)
                if order != 0 { return order }
            }
            return keysX.count == keysY.count ? 0 : (keysX.count < keysY.count ? -1 : 1)
        case (.null, .null):
            return 0
        default:
            let x = a.doubleValue ?? 0
            let y = b.doubleValue ?? 0
            return x == y ? 0 : (x < y ? -1 : 1)
        }
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool { compare(a, b) == 0 }

    /// Everything but `false` and `null` is true.
    static func isTruthy(_ value: JSONValue) -> Bool {
        switch value {
        case .null, .bool(false): false
        default: true
        }
    }

    /// `update`'s merge: nested objects merge recursively, anything else replaces.
    static func merge(_ base: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(var members) = base, case .object(let changes) = patch else { return patch }
        for (key, value) in changes {
            if let existing = members[key], case .object = existing, case .object = value {
                members[key] = merge(existing, value)
            } else {
                members[key] = value
            }
        }
        return .object(members)
    }

    /// RethinkDB's multi-line rendering of a datum in messages (tab indented, keys sorted).
    static func pretty(_ value: JSONValue, depth: Int = 0) -> String {
        switch value {
        case .object(let members):
            let indent = String(repeating: "\t", count: depth + 1)
            let lines = members.keys.sorted().map { key in
                indent + JSONValue.string(key).jsonString + ":\t" + pretty(members[key] ?? .null, depth: depth + 1)
            }
            return "{\n" + lines.joined(separator: ",\n") + (lines.isEmpty ? "" : "\n") + String(repeating: "\t", count: depth) + "}"
        case .array(let elements):
            return "[" + elements.map { pretty($0, depth: depth) }.joined(separator: ", ") + "]"
        default:
            return value.jsonString
        }
    }
}
