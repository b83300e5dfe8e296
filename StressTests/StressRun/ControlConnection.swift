import BenchSupport
import Foundation
import GuildNetControl
import GuildNetCore

/// A failed control request: the daemon's error code (or the client's own: `client_timeout`,
/// `connection_lost`) and message.
struct OpError: Error, CustomStringConvertible {
    var code: String
    var message: String
    var description: String { "\(code): \(message)" }
}

/// One control connection shared by many tasks: requests are pipelined and matched by id; stream
/// events go to the handler given with the request that opened the subscription, installed by the
/// single reader before it reads the next line, so no event is missed or reordered.
final class ControlConnection: Sendable {
    typealias EventHandler = @Sendable (JSONValue) -> Void

    private struct State {
        var nextID = 0
        var pending: [String: ReplySlot] = [:]
        var pendingHandlers: [String: EventHandler] = [:]
        var handlers: [String: EventHandler] = [:]
        var ended = false
    }

    let client: ControlClient
    let recorder: OpRecorder
    private let state = LockedValue(State())

    private init(client: ControlClient, recorder: OpRecorder) {
        self.client = client
        self.recorder = recorder
    }

    /// Connects to `socket`, runs `body` with the connection while its reader runs, then closes it.
    static func with<T: Sendable>(
        socket: String, recorder: OpRecorder, _ body: @Sendable (ControlConnection) async throws -> T
    ) async throws -> T {
        let client = try await ControlClient.connect(path: socket)
        let connection = ControlConnection(client: client, recorder: recorder)
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask { await connection.readLoop() }
            do {
                let result = try await body(connection)
                await client.close()
                try await group.waitForAll()
                return result
            } catch {
                await client.close()
                group.cancelAll()
                throw error
            }
        }
    }

    private func readLoop() async {
        while true {
            let line: [UInt8]?
            do {
                line = try await client.receive()
            } catch let error as HostError where error.code == .lineTooLong {
                continue
            } catch {
                break
            }
            guard let line else { break }
            guard let value = try? JSONParser.parse(line) else { continue }
            if value["event"] != nil {
                guard let sub = value["sub"]?.stringValue else { continue }
                let handler = state.withLock { $0.handlers[sub] }
                handler?(value)
                continue
            }
            guard let id = value["id"]?.stringValue else { continue }
            let slot = state.withLock { state -> ReplySlot? in
                let slot = state.pending.removeValue(forKey: id)
                if let handler = state.pendingHandlers.removeValue(forKey: id), let sub = value["result"]?["sub"]?.stringValue {
                    state.handlers[sub] = handler
                }
                return slot
            }
            slot?.fulfil(.success(value))
        }
        let slots = state.withLock { state -> [ReplySlot] in
            state.ended = true
            defer { state.pending.removeAll() }
            return Array(state.pending.values)
        }
        for slot in slots { slot.fulfil(.failure(OpError(code: "connection_lost", message: "the control connection ended"))) }
    }

    /// Sends `op` with `fields` and returns its `result`; records the latency under `op` (or
    /// `label`) and the error code on failure. `onEvent` receives the events of the subscription
    /// the reply opens (`k8s.watch`, `rethink.changes`). An error `expected` accepts (a table
    /// that already exists) is still thrown but recorded as a success.
    @discardableResult
    func call(
        _ op: String, _ fields: [String: JSONValue], label: String? = nil, timeout: Duration = .seconds(90),
        expected: (@Sendable (OpError) -> Bool)? = nil, onEvent: EventHandler? = nil
    ) async throws -> JSONValue {
        let slot = ReplySlot()
        let (id, ended) = state.withLock { state -> (String, Bool) in
            state.nextID += 1
            let id = "s\(state.nextID)"
            if !state.ended {
                state.pending[id] = slot
                if let onEvent { state.pendingHandlers[id] = onEvent }
            }
            return (id, state.ended)
        }
        let name = label ?? op
        let started = Bench.nowNanos()
        func fail(_ error: OpError) -> OpError {
            recorder.record(name, nanos: Bench.nowNanos() - started, error: expected?(error) == true ? nil : error.code)
            return error
        }
        if ended { throw fail(OpError(code: "connection_lost", message: "the control connection ended")) }
        var request = fields
        request["op"] = .string(op)
        request["id"] = .string(id)
        do {
            try await client.send(JSONValue.object(request).jsonString)
        } catch {
            forget(id)
            throw fail(OpError(code: "connection_lost", message: "\(error)"))
        }
        let reply: JSONValue
        do {
            reply = try await withDeadline(timeout, "reply to \(op)") { try await slot.wait() }
        } catch let error as OpError {
            forget(id)
            throw fail(error)
        } catch {
            forget(id)
            if error is CancellationError { throw error }
            throw fail(OpError(code: "client_timeout", message: "\(op): no reply within \(timeout)"))
        }
        guard reply["ok"] == .bool(true) else {
            let code = reply["error"]?["code"]?.stringValue ?? "unknown"
            throw fail(OpError(code: code, message: reply["error"]?["message"]?.stringValue ?? reply.jsonString))
        }
        recorder.record(name, nanos: Bench.nowNanos() - started, error: nil)
        return reply["result"] ?? .null
    }

    /// Stops routing events of `sub` (after `k8s.unwatch` / `rethink.unsubscribe`, or its final event).
    func dropHandler(sub: String) {
        state.withLock { _ = $0.handlers.removeValue(forKey: sub) }
    }

    private func forget(_ id: String) {
        state.withLock { state in
            state.pending.removeValue(forKey: id)
            state.pendingHandlers.removeValue(forKey: id)
        }
    }
}

/// Where one reply lands: fulfilled by the reader, awaited (cancellably) by the requester.
final class ReplySlot: Sendable {
    private struct State {
        var result: Result<JSONValue, any Error>?
        var waiter: CheckedContinuation<JSONValue, any Error>?
    }

    private let state = LockedValue(State())

    func fulfil(_ result: Result<JSONValue, any Error>) {
        let waiter = state.withLock { state -> CheckedContinuation<JSONValue, any Error>? in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result)
    }

    func wait() async throws -> JSONValue {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Result<JSONValue, any Error>? in
                    if let result = state.result { return result }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            fulfil(.failure(CancellationError()))
        }
    }
}
