import GuildNetCore

/// libFuzzer target: `JSONParser.parse` on arbitrary bytes.
///
/// Contract: it returns a value or throws `JSONParser.Error` (never traps). Round trip: the value's
/// serialization parses again to an equal value (integral doubles come back as integers, so
/// numbers compare by value), and serializing that gives the same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let value: JSONValue
    do {
        value = try JSONParser.parse(bytes)
    } catch {
        precondition(error.offset >= 0 && error.offset <= bytes.count, "error offset \(error.offset) outside the input")
        return 0
    }
    let encoded = value.serialized
    let reparsed: JSONValue
    do {
        reparsed = try JSONParser.parse(encoded)
    } catch {
        preconditionFailure("serialized value does not parse: \(error)")
    }
    precondition(sameValue(value, reparsed), "round trip changed the value")
    precondition(reparsed.serialized == encoded, "re-serialization is not stable")
    return 0
}

/// Equality with numbers compared by value (`.int(1)` equals `.double(1.0)`).
func sameValue(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.int(let x), .double(let y)), (.double(let y), .int(let x)):
        return Double(x) == y
    case (.array(let x), .array(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { sameValue($0, $1) }
    case (.object(let x), .object(let y)):
        return x.count == y.count && x.allSatisfy { key, value in y[key].map { sameValue(value, $0) } ?? false }
    default:
        return a == b
    }
}
