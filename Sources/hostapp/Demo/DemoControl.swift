import GuildNetControl
import GuildNetCore

/// The demo's requests to its own daemon, over the control socket like any client's: one
/// connection, requests pipelined, each with its own id.
struct DemoControl: Sendable {
    let client: ControlClient
    private let ids = LockedValue(0)

    init(client: ControlClient) {
        self.client = client
    }

    static func connect(_ path: String) async throws -> DemoControl {
        DemoControl(client: try await ControlClient.connect(path: path))
    }

    /// Sends `fields` as one request; returns its `result`.
    /// - Throws: ``HostError`` with the daemon's code when the reply is an error.
    func call(_ fields: [String: JSONValue]) async throws -> JSONValue {
        let number = ids.withLock { count in
            count += 1
            return count
        }
        return try await Self.call(client, fields, id: "demo-\(number)")
    }

    static func call(_ client: ControlClient, _ fields: [String: JSONValue], id: String) async throws -> JSONValue {
        var request = fields
        request["id"] = .string(id)
        let reply = try JSONParser.parse(try await client.request(JSONValue.object(request).jsonString, id: id, timeout: .seconds(60)))
        guard reply["ok"] == true, let result = reply["result"] else {
            let code = reply["error"]?["code"]?.stringValue ?? "internal_error"
            let message = reply["error"]?["message"]?.stringValue ?? reply.jsonString
            throw HostError(ErrorCode(rawValue: code), "\(fields["op"]?.stringValue ?? "request"): \(message)")
        }
        return result
    }
}
