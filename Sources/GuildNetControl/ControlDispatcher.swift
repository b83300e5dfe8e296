import GuildNetCore
import GuildNetRuntime
import Logging

/// Routes control requests to the host: parses each line, runs its op, encodes the reply.
/// One dispatcher serves every connection (socket and stdin); it holds no per-connection state.
public struct ControlDispatcher: ControlLineHandler {
    let context: OpContext
    let ops: [String: ControlOp]

    /// - Parameter requestShutdown: called by `host.shutdown` after its reply is queued.
    public init(host: HostActor, logger: Logger, requestShutdown: @escaping @Sendable () -> Void) {
        self.context = OpContext(host: host, logger: logger, requestShutdown: requestShutdown)
        var table: [String: ControlOp] = [:]
        for op in HostOps.all + ClusterOps.all + StoreOps.all + SettingsOps.all {
            table[op.name] = op
        }
        self.ops = table
    }

    /// Every op name this dispatcher knows, sorted.
    public var opNames: [String] { ops.keys.sorted() }

    public func handle(line: [UInt8], output: ControlOutput) async {
        let (reply, after) = await respond(to: line)
        await output.send(reply)
        after?()
    }

    public func handleOversizedLine(byteCount: Int, output: ControlOutput) async {
        let error = HostError(.lineTooLong, "request line of \(byteCount) bytes exceeds the limit; it was discarded")
        await output.send(ControlReply.failure(id: .null, error: error))
    }

    public func connectionClosed(_ output: ControlOutput) async {}

    /// The reply line for one request line, plus an action to run once the reply is sent.
    public func respond(to line: [UInt8]) async -> (reply: [UInt8], after: (@Sendable () -> Void)?) {
        let request: ControlRequest
        switch ControlRequest.parse(line) {
        case .success(let parsed):
            request = parsed
        case .failure(let failure):
            return (ControlReply.failure(id: failure.id, error: failure.error), nil)
        }
        guard let op = ops[request.op] else {
            let error = HostError(.unknownOp, "unknown op \(String(reflecting: request.op)); see docs/control-protocol.md")
            return (ControlReply.failure(id: request.id, error: error), nil)
        }
        do {
            try request.params.allowOnly(op.fields)
            let result = try await op.run(request.params, context)
            return (ControlReply.success(id: request.id, result: result), op.name == "host.shutdown" ? context.requestShutdown : nil)
        } catch {
            let error = HostError.wrapping(error)
            if error.code == .internalError {
                context.logger.error("op \(op.name) failed: \(error)", metadata: ["event": "op_failed"])
            }
            return (ControlReply.failure(id: request.id, error: error), nil)
        }
    }
}

/// What an op handler may use.
struct OpContext: Sendable {
    let host: HostActor
    let logger: Logger
    let requestShutdown: @Sendable () -> Void

    /// The cluster a request names. A request that arrives while its cluster is still starting
    /// (e.g. pipelined right after `cluster.register`) waits until it is ready or degraded.
    func cluster(_ params: ControlParams) async throws -> ClusterActor {
        let cluster = try await host.cluster(named: params.string("cluster"))
        if !cluster.state.hasSettled {
            _ = await cluster.waitUntilSettled(timeout: host.configuration.startTimeout)
        }
        return cluster
    }
}

/// One op: its name, the fields it accepts, and its handler.
struct ControlOp: Sendable {
    let name: String
    let fields: Set<String>
    let run: @Sendable (ControlParams, OpContext) async throws -> JSONValue

    init(
        _ name: String,
        fields: Set<String>,
        _ run: @escaping @Sendable (ControlParams, OpContext) async throws -> JSONValue
    ) {
        self.name = name
        self.fields = fields
        self.run = run
    }
}
