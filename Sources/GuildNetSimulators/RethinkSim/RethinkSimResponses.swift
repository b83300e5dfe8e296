import GuildNetCore
import GuildNetRethink
import NIOCore

/// Response documents as RethinkDB's `json.cc` writes them: `t`, `r`, `e` on runtime errors only,
/// `b` (backtrace) on errors, `n` (notes) on SUCCESS_SEQUENCE and SUCCESS_PARTIAL.
enum RethinkSimResponse {
    static func atom(_ value: JSONValue) -> JSONValue {
        ["t": .int(RethinkWire.ResponseType.successAtom.rawValue), "r": [value]]
    }

    static func sequence(_ rows: [JSONValue], partial: Bool, notes: [JSONValue] = []) -> JSONValue {
        let type: RethinkWire.ResponseType = partial ? .successPartial : .successSequence
        return ["t": .int(type.rawValue), "r": .array(rows), "n": .array(notes)]
    }

    static func waitComplete() -> JSONValue {
        ["t": .int(RethinkWire.ResponseType.waitComplete.rawValue), "r": []]
    }

    static func serverInfo(id: String, name: String) -> JSONValue {
        ["t": .int(RethinkWire.ResponseType.serverInfo.rawValue), "r": [["id": .string(id), "name": .string(name), "proxy": false]]]
    }

    static func failure(_ failure: ReqlFailure) -> JSONValue {
        var members: [String: JSONValue] = ["t": .int(failure.responseType.rawValue), "r": [.string(failure.message)], "b": []]
        if failure.responseType == .runtimeError { members["e"] = .int(failure.errorType.rawValue) }
        return .object(members)
    }

    /// `token | length | JSON` as one buffer.
    static func frame(token: UInt64, _ response: JSONValue) -> ByteBuffer {
        let payload = response.serialized
        var buffer = ByteBufferAllocator().buffer(capacity: RethinkWire.frameHeaderSize + payload.count)
        RethinkFrame(token: token, payload: payload).write(into: &buffer)
        return buffer
    }
}
