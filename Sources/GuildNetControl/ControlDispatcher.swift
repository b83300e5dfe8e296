import Foundation
import GuildNetCore
import GuildNetRuntime
import Logging

/// Routes control requests to the host: parses each line, runs its op, encodes the reply.
/// One dispatcher serves every connection (socket and stdin); it holds no per-connection state.
public struct ControlDispatcher: ControlLineHandler {
    let context: OpContext
    let ops: [String: ControlOp]

    /// - Parameter requestShutdown: called by `host.shutdown` after its reply is queued.
    /// - Parameter hostProxy: the host proxy (`--proxy-addr`), for `cluster.kubeconfig` and `proxy.rotate_token`.
    /// - Parameter operatorName: who the audit log names for requests without socket credentials
    ///   (stdin): `serve --operator`, else `$USER`.
    public init(
        host: HostActor, logger: Logger, requestShutdown: @escaping @Sendable () -> Void, hostProxy: HostProxyServer? = nil,
        operatorName: String? = nil
    ) {
        var context = OpContext(host: host, logger: logger, requestShutdown: requestShutdown)
        context.hostProxy = hostProxy
        context.operatorName = operatorName ?? ProcessInfo.processInfo.environment["USER"] ?? "unknown"
        self.context = context
        self.ops = Self.opTable
    }

    /// Every op by name (the handlers take the host from their context, so the table is static).
    static let opTable: [String: ControlOp] = {
        var table: [String: ControlOp] = [:]
        for op in allOps { table[op.name] = op }
        return table
    }()

    /// Parses one request line and validates it against the op table (a known op, only the fields
    /// it defines) without running it: the checks every request passes before its handler, with
    /// the error reply's id and `HostError`. No host is needed (the fuzz target calls this).
    public static func validate(line: [UInt8]) -> Result<ControlRequest, ControlRequestError> {
        validated(ControlRequest.parse(line)).map(\.request)
    }

    /// ``validate(line:)`` of an already parsed line, with the op that will run the request.
    static func validated(
        _ parsed: Result<ControlRequest, ControlRequestError>
    ) -> Result<(request: ControlRequest, op: ControlOp), ControlRequestError> {
        let request: ControlRequest
        switch parsed {
        case .success(let parsed): request = parsed
        case .failure(let failure): return .failure(failure)
        }
        guard let op = opTable[request.op] else {
            let guess = Spelling.closest(to: request.op, among: opTable.keys).map { "did you mean \(String(reflecting: $0))? " } ?? ""
            let error = HostError(
                .unknownOp,
                "unknown op \(String(reflecting: request.op)); \(guess)`hostapp ctl --help` lists the ops, docs/control-protocol.md describes them")
            return .failure(ControlRequestError(id: request.id, error: error))
        }
        do {
            try request.params.allowOnly(op.fields)
        } catch {
            return .failure(ControlRequestError(id: request.id, error: HostError.wrapping(error, as: .invalidField)))
        }
        return .success((request, op))
    }

    /// The table every dispatcher routes with.
    static var allOps: [ControlOp] {
        HostOps.all + ClusterOps.all + StoreOps.all + SettingsOps.all + KubeOps.all + RethinkOps.all + ForwardOps.all
            + BootstrapOps.all + RouteOps.all + ProxyOps.all + AuditOps.all
    }

    /// Every op and the fields it accepts, sorted by name: the same table requests are routed
    /// with (`hostapp ctl --help` prints it, so the help cannot drift from the daemon).
    public static var catalog: [(op: String, fields: [String])] {
        allOps.map { (op: $0.name, fields: $0.fields.sorted { Self.fieldOrder($0) < Self.fieldOrder($1) }) }
            .sorted { $0.op < $1.op }
    }

    /// `cluster` first, then the others alphabetically.
    private static func fieldOrder(_ field: String) -> String {
        field == "cluster" ? "" : field
    }

    /// Every op name this dispatcher knows, sorted.
    public var opNames: [String] { ops.keys.sorted() }

    public func accept(line: [UInt8]) -> AcceptedLine {
        let parsed = ControlRequest.parse(line)
        return AcceptedLine(sequencing: sequencing(of: parsed)) { output in
            let (reply, after) = await respond(to: parsed, output: output)
            await output.send(reply)
            after?()
        }
    }

    /// Requests that name a cluster are ordered around that cluster's register/unregister on
    /// their connection (docs/control-protocol.md, "Pipelining").
    func sequencing(of parsed: Result<ControlRequest, ControlRequestError>) -> LineSequencing {
        guard case .success(let request) = parsed, let op = ops[request.op],
            op.fields.contains("cluster"), case .string(let name)? = request.params.fields["cluster"]
        else { return .independent }
        // The registry's key, so two spellings of one id share a lane; an invalid name fails fast anyway.
        let key = (try? ClusterID(name: name))?.key ?? name
        return op.changesRegistry ? .clusterLifecycle(key) : .cluster(key)
    }

    public func handleOversizedLine(byteCount: Int, output: ControlOutput) async {
        let error = HostError(.lineTooLong, "request line of \(byteCount) bytes exceeds the limit; it was discarded")
        await output.send(ControlReply.failure(id: .null, error: error))
    }

    public func connectionClosed(_ output: ControlOutput) async {}

    /// The reply line for one request line, plus an action to run once the reply is sent.
    /// Streaming ops need `output` (the connection their events go to); without it they fail.
    public func respond(to line: [UInt8], output: ControlOutput? = nil) async -> (reply: [UInt8], after: (@Sendable () -> Void)?) {
        await respond(to: ControlRequest.parse(line), output: output)
    }

    func respond(
        to parsed: Result<ControlRequest, ControlRequestError>,
        output: ControlOutput?
    ) async -> (reply: [UInt8], after: (@Sendable () -> Void)?) {
        let request: ControlRequest
        let op: ControlOp
        switch Self.validated(parsed) {
        case .success(let validated):
            (request, op) = validated
        case .failure(let failure):
            return (ControlReply.failure(id: failure.id, error: failure.error), nil)
        }
        let audit = AdminAudit.details(op: op.name, fields: request.params.fields)
        do {
            var context = self.context
            context.output = output
            context.afterReply = AfterReply()
            let result = try await op.run(request.params, context)
            if let audit { await record(audit, output: output, outcome: .success(())) }
            let after = context.afterReply
            let shutdown = op.name == "host.shutdown" ? context.requestShutdown : nil
            return (
                ControlReply.success(id: request.id, result: result),
                {
                    after?.run()
                    shutdown?()
                }
            )
        } catch {
            let error = HostError.wrapping(error)
            if let audit { await record(audit, output: output, outcome: .failure(error)) }
            if error.code == .internalError {
                context.logger.error("op \(op.name) failed: \(error)", metadata: ["event": "op_failed"])
            }
            return (ControlReply.failure(id: request.id, error: error), nil)
        }
    }
}

extension ControlDispatcher {
    /// Writes one admin audit entry; a failure to write is logged (`audit_failed`), the reply stands.
    func record(_ details: [String: JSONValue], output: ControlOutput?, outcome: Result<Void, HostError>) async {
        let peer = output?.peer ?? .stdin(operatorName: context.operatorName)
        do {
            try await AdminAudit.record(details, peer: peer, outcome: outcome, stateDirectory: context.host.configuration.stateDirectory)
        } catch {
            context.logger.error("cannot write the admin audit log: \(error.description)", metadata: ["event": "audit_failed"])
        }
    }
}

/// What an op handler may use.
struct OpContext: Sendable {
    let host: HostActor
    let logger: Logger
    let requestShutdown: @Sendable () -> Void
    /// The connection the request came from (`nil` when a request is answered without one).
    var output: ControlOutput?
    /// Actions to run once this request's reply is queued (starting subscription pumps).
    var afterReply: AfterReply?
    /// The host proxy, when the daemon serves one.
    var hostProxy: HostProxyServer?
    /// Who the audit log names for requests without socket credentials.
    var operatorName = "unknown"

    init(host: HostActor, logger: Logger, requestShutdown: @escaping @Sendable () -> Void) {
        self.host = host
        self.logger = logger
        self.requestShutdown = requestShutdown
    }

    /// The connection's subscriptions; streaming ops need a connection.
    func streams() throws -> ConnectionStreams {
        guard let output else { throw HostError(.invalidRequest, "this op streams events and needs a connection") }
        return output.streams
    }

    /// The cluster a request names. A request that arrives while its cluster is still starting
    /// (e.g. pipelined right after `cluster.register`) waits until it is ready or degraded.
    func cluster(_ params: ControlParams) async throws -> ClusterActor {
        let cluster: ClusterActor
        do {
            cluster = try await host.cluster(named: params.string("cluster"))
        } catch let error as HostError where error.code == .clusterNotFound {
            throw HostError(.clusterNotFound, error.message + "; register it with cluster.register (cluster.list lists the registered clusters)")
        }
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
    /// Adds or removes a cluster (`cluster.register`, `cluster.unregister`): a barrier for the
    /// requests naming that cluster on the same connection.
    let changesRegistry: Bool
    let run: @Sendable (ControlParams, OpContext) async throws -> JSONValue

    init(
        _ name: String,
        fields: Set<String>,
        changesRegistry: Bool = false,
        _ run: @escaping @Sendable (ControlParams, OpContext) async throws -> JSONValue
    ) {
        self.name = name
        self.fields = fields
        self.changesRegistry = changesRegistry
        self.run = run
    }
}

/// Actions collected while an op runs, run once its reply has been queued.
final class AfterReply: Sendable {
    private let actions = LockedValue<[@Sendable () -> Void]>([])

    func append(_ action: @escaping @Sendable () -> Void) {
        actions.withLock { $0.append(action) }
    }

    func run() {
        for action in actions.withLock({ $0 }) { action() }
    }
}
