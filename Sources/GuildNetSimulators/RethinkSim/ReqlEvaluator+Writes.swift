import GuildNetCore
import GuildNetRethink

/// The counters of a write result, as RethinkDB reports them.
struct WriteTally {
    enum ReturnChanges {
        case no, yes, always
    }

    var inserted = 0
    var replaced = 0
    var unchanged = 0
    var skipped = 0
    var deleted = 0
    var errors = 0
    var firstError: String?
    var generatedKeys: [JSONValue] = []
    var returnChanges = ReturnChanges.no
    var changes: [JSONValue] = []

    mutating func fail(_ message: String) {
        errors += 1
        if firstError == nil { firstError = message }
    }

    /// RethinkDB's error for a written value that is not an object.
    mutating func failNotAnObject(_ value: JSONValue) {
        fail("Inserted value must be an OBJECT (got \(ReqlDatum.typeName(value))):\n\(ReqlDatum.pretty(value))")
    }

    /// RethinkDB's error for a write that would change a row's primary key.
    mutating func failPrimaryKeyChanged(_ primaryKey: String, old: JSONValue, new: JSONValue) {
        fail("Primary key `\(primaryKey)` cannot be changed (`\(ReqlDatum.pretty(old))` -> `\(ReqlDatum.pretty(new))`).")
    }

    mutating func record(old: JSONValue?, new: JSONValue?, changed: Bool) {
        guard returnChanges == .always || (returnChanges == .yes && changed) else { return }
        changes.append(["old_val": old ?? .null, "new_val": new ?? .null])
    }

    var result: JSONValue {
        var members: [String: JSONValue] = [
            "inserted": .int(Int64(inserted)), "replaced": .int(Int64(replaced)), "unchanged": .int(Int64(unchanged)),
            "skipped": .int(Int64(skipped)), "deleted": .int(Int64(deleted)), "errors": .int(Int64(errors)),
        ]
        if let firstError { members["first_error"] = .string(firstError) }
        if !generatedKeys.isEmpty { members["generated_keys"] = .array(generatedKeys) }
        if returnChanges != .no { members["changes"] = .array(changes) }
        return .object(members)
    }
}

extension RethinkData {
    mutating func evaluateWrite(
        _ type: RethinkWire.TermType, _ args: [ReqlTerm], _ optargs: [String: ReqlTerm], _ scope: ReqlScope
    ) throws -> ReqlValue {
        var tally = WriteTally()
        if let option = optargs["return_changes"] {
            switch try datum(option, scope) {
            case .bool(let flag): tally.returnChanges = flag ? .yes : .no
            case .string("always"): tally.returnChanges = .always
            case let other: throw ReqlFailure.expected("BOOL", found: ReqlDatum.typeName(other))
            }
        }
        switch type {
        case .insert:
            try insert(args, optargs, scope, &tally)
        case .delete:
            let (table, targets) = try writeTargets(try evaluate(args[0], scope))
            for target in targets {
                guard let doc = target.doc else {
                    tally.skipped += 1
                    continue
                }
                apply(table, key: target.key, old: doc, new: nil, &tally)
            }
        case .update, .replace:
            let (table, targets) = try writeTargets(try evaluate(args[0], scope))
            let change = try evaluate(args[1], scope)
            for target in targets {
                let proposed: JSONValue
                do {
                    if case .function(let function) = change {
                        if type == .update && target.doc == nil { proposed = .null } else { proposed = try call(function, [target.doc ?? .null]) }
                    } else {
                        proposed = try asDatum(change)
                    }
                } catch let failure as ReqlFailure where failure.responseType == .runtimeError {
                    tally.fail(failure.message)
                    continue
                }
                if type == .update {
                    update(table, target, proposed, &tally)
                } else {
                    replace(table, target, proposed, &tally)
                }
            }
        default:
            throw ReqlFailure.compile("Term \(type) is not a write.")
        }
        return .datum(tally.result)
    }

    /// The rows a write applies to: a table, a selection of one, or a `get`.
    private mutating func writeTargets(_ value: ReqlValue) throws -> (ReqlTableRef, [(key: JSONValue, doc: JSONValue?)]) {
        switch value {
        case .table(let table):
            return (table, rows(of: table).map { ($0[table.primaryKey] ?? .null, $0) })
        case .single(let single):
            return (single.table, [(single.key, single.doc)])
        case .sequence(let sequence):
            guard let table = sequence.table else { throw ReqlFailure.expected("SELECTION", found: value.typeName) }
            return (table, sequence.rows.map { ($0[table.primaryKey] ?? .null, $0) })
        default:
            throw ReqlFailure.expected("SELECTION", found: value.typeName)
        }
    }

    private mutating func insert(_ args: [ReqlTerm], _ optargs: [String: ReqlTerm], _ scope: ReqlScope, _ tally: inout WriteTally) throws {
        let table = try tableArgument(args[0], scope)
        let payload = try datum(args[1], scope)
        let documents: [JSONValue]
        if case .array(let elements) = payload { documents = elements } else { documents = [payload] }
        enum Conflict {
            case error, replace, update
            case function(ReqlFunction)
        }
        var conflict = Conflict.error
        if let option = optargs["conflict"] {
            switch try evaluate(option, scope) {
            case .datum(.string("error")): conflict = .error
            case .datum(.string("replace")): conflict = .replace
            case .datum(.string("update")): conflict = .update
            case .function(let function): conflict = .function(function)
            case .datum(.string(let other)):
                throw ReqlFailure.logic("Conflict option `\(other)` unrecognized (options are \"error\", \"replace\" and \"update\").")
            case let other:
                throw ReqlFailure.expected("STRING", found: other.typeName)
            }
        }
        let primaryKey = table.primaryKey
        for document in documents {
            guard case .object(var members) = document else {
                tally.fail("Expected type OBJECT but found \(ReqlDatum.typeName(document)).")
                continue
            }
            let key: JSONValue
            if let existing = members[primaryKey] {
                key = existing
            } else {
                key = .string(Self.makeID())
                members[primaryKey] = key
                tally.generatedKeys.append(key)
            }
            let doc = JSONValue.object(members)
            switch key {
            case .null, .object:
                tally.fail(
                    "Primary keys must be either a number, string, bool, pseudotype or array (got type \(ReqlDatum.typeName(key))):\n\(ReqlDatum.pretty(key))")
                continue
            default:
                break
            }
            guard let old = self.table(table)?[key] else {
                apply(table, key: key, old: nil, new: doc, &tally)
                continue
            }
            let new: JSONValue
            switch conflict {
            case .error:
                tally.fail("Duplicate primary key `\(primaryKey)`:\n\(ReqlDatum.pretty(old))\n\(ReqlDatum.pretty(doc))")
                continue
            case .replace:
                new = doc
            case .update:
                new = ReqlDatum.merge(old, doc)
            case .function(let function):
                do {
                    new = try call(function, [key, old, doc])
                } catch let failure as ReqlFailure where failure.responseType == .runtimeError {
                    tally.fail(failure.message)
                    continue
                }
            }
            if new == .null {
                apply(table, key: key, old: old, new: nil, &tally)
                continue
            }
            guard new.objectValue != nil else {
                tally.failNotAnObject(new)
                continue
            }
            guard let newKey = new[primaryKey], ReqlDatum.equal(newKey, key) else {
                tally.failPrimaryKeyChanged(primaryKey, old: old, new: new)
                continue
            }
            apply(table, key: key, old: old, new: ReqlDatum.normalize(new), &tally)
        }
    }

    private mutating func update(_ table: ReqlTableRef, _ target: (key: JSONValue, doc: JSONValue?), _ patch: JSONValue, _ tally: inout WriteTally) {
        guard let old = target.doc else {
            tally.skipped += 1
            return
        }
        if patch == .null {
            tally.unchanged += 1
            tally.record(old: old, new: old, changed: false)
            return
        }
        guard patch.objectValue != nil else {
            tally.failNotAnObject(patch)
            return
        }
        let new = ReqlDatum.merge(old, patch)
        guard let newKey = new[table.primaryKey], ReqlDatum.equal(newKey, target.key) else {
            tally.failPrimaryKeyChanged(table.primaryKey, old: old, new: new)
            return
        }
        apply(table, key: target.key, old: old, new: new, &tally)
    }

    private mutating func replace(_ table: ReqlTableRef, _ target: (key: JSONValue, doc: JSONValue?), _ new: JSONValue, _ tally: inout WriteTally) {
        let primaryKey = table.primaryKey
        if new == .null {
            guard let old = target.doc else {
                tally.skipped += 1
                return
            }
            apply(table, key: target.key, old: old, new: nil, &tally)
            return
        }
        guard new.objectValue != nil else {
            tally.failNotAnObject(new)
            return
        }
        guard let newKey = new[primaryKey] else {
            tally.fail("Inserted object must have primary key `\(primaryKey)`:\n\(ReqlDatum.pretty(new))")
            return
        }
        guard ReqlDatum.equal(newKey, target.key) else {
            tally.failPrimaryKeyChanged(primaryKey, old: target.doc ?? .null, new: new)
            return
        }
        apply(table, key: target.key, old: target.doc, new: new, &tally)
    }

    /// Writes one row change and counts it: an insert (`old` nil), a delete (`new` nil), or a
    /// replacement, counted as unchanged (and not written) when the row stays equal.
    private mutating func apply(_ table: ReqlTableRef, key: JSONValue, old: JSONValue?, new: JSONValue?, _ tally: inout WriteTally) {
        switch (old, new) {
        case (nil, let new?):
            write(table, key: key, old: nil, new: new)
            tally.inserted += 1
            tally.record(old: nil, new: new, changed: true)
        case (let old?, nil):
            write(table, key: key, old: old, new: nil)
            tally.deleted += 1
            tally.record(old: old, new: nil, changed: true)
        case (let old?, let new?) where ReqlDatum.equal(new, old):
            tally.unchanged += 1
            tally.record(old: old, new: old, changed: false)
        case (let old?, let new?):
            write(table, key: key, old: old, new: new)
            tally.replaced += 1
            tally.record(old: old, new: new, changed: true)
        case (nil, nil):
            break
        }
    }
}
