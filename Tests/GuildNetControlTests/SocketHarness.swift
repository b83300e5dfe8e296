import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetRuntime
import Logging
import TestSupport

/// Runs a real host behind a real control socket (the daemon's dispatcher) for `body`.
func withHostOnSocket<T: Sendable>(
    logs: LogCapture = LogCapture(),
    _ body: @Sendable (HostActor, ControlClient, String) async throws -> T
) async throws -> T {
    var template = Array("/tmp/gns-XXXXXX".utf8CString)
    guard let created = template.withUnsafeMutableBufferPointer({ buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }) else {
        throw HostError(.io, "mkdtemp failed")
    }
    let directory = String(cString: created)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let socketPath = directory + "/c.sock"
    return try await withRunningHost(stateDirectory: directory + "/state", logs: logs) { host in
        let dispatcher = ControlDispatcher(host: host, logger: host.configuration.logger, requestShutdown: {})
        let server = ControlSocketServer(path: socketPath, configuration: .init(), handler: dispatcher, logger: host.configuration.logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            do {
                var connected: ControlClient?
                try await eventually("control socket listening") {
                    connected = try? await ControlClient.connect(path: socketPath)
                    return connected != nil
                }
                guard let client = connected else { throw HostError(.io, "no client") }
                let result = try await body(host, client, directory)
                await client.close()
                server.shutdown()
                try await group.waitForAll()
                return result
            } catch {
                server.shutdown()
                try? await group.waitForAll()
                throw error
            }
        }
    }
}

/// Sends one request and returns its `result`, failing with the reply's error.
func call(_ client: ControlClient, _ id: String, _ fields: [String: JSONValue], timeout: Duration = .seconds(30)) async throws -> JSONValue {
    var request = fields
    request["id"] = .string(id)
    let reply = try JSONParser.parse(try await client.request(JSONValue.object(request).jsonString, id: id, timeout: timeout))
    guard reply["ok"] == .bool(true), let result = reply["result"] else {
        throw HostError(.internalError, "request \(id) failed: \(reply.jsonString)")
    }
    return result
}

/// Sends one request and returns its error object (failing if it succeeded).
func callFailing(_ client: ControlClient, _ id: String, _ fields: [String: JSONValue]) async throws -> JSONValue {
    var request = fields
    request["id"] = .string(id)
    let reply = try JSONParser.parse(try await client.request(JSONValue.object(request).jsonString, id: id, timeout: .seconds(30)))
    guard reply["ok"] == .bool(false), let error = reply["error"] else {
        throw HostError(.internalError, "request \(id) should have failed: \(reply.jsonString)")
    }
    return error
}

/// The next stream event line of `sub` (other lines are skipped), within `timeout`.
func nextEvent(_ client: ControlClient, sub: String, timeout: Duration = .seconds(15)) async throws -> JSONValue {
    try await withDeadline(timeout, "an event of \(sub)") {
        while let line = try await client.receive() {
            let value = try JSONParser.parse(line)
            if value["sub"] == .string(sub) { return value }
        }
        throw HostError(.io, "the connection closed while waiting for an event of \(sub)")
    }
}
