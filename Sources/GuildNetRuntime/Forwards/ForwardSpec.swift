import GuildNetCore

/// What a forward reaches: one pod by name, or whichever ready pod a service selects.
public enum ForwardTarget: Sendable, Hashable {
    case pod(String)
    case service(String)

    var kind: String {
        switch self {
        case .pod: "pod"
        case .service: "service"
        }
    }

    var name: String {
        switch self {
        case .pod(let name), .service(let name): name
        }
    }
}

/// A forward as asked for by `forward.start`; two equal specs are the same forward.
public struct ForwardSpec: Sendable, Hashable {
    public var namespace: String
    public var target: ForwardTarget
    /// The pod port, or the service port (mapped to its target port).
    public var remotePort: Int
    /// The local port asked for on 127.0.0.1; 0 asks for an ephemeral one.
    public var localPort: Int

    public init(namespace: String, target: ForwardTarget, remotePort: Int, localPort: Int = 0) {
        self.namespace = namespace
        self.target = target
        self.remotePort = remotePort
        self.localPort = localPort
    }

    /// The forward's id within its cluster: readable and stable, so asking again finds it.
    public var id: String {
        "\(namespace)/\(target.kind)/\(target.name):\(remotePort)@\(localPort)"
    }
}

/// Where a forward's phase is in its life.
public enum ForwardState: String, Sendable {
    /// Listening; the first check of the target has not finished.
    case starting
    case active
    /// The target failed a check; the forward re-resolves it after a backoff.
    case restarting
    /// Gave up (restart limit, the pod was deleted): the listener is closed; `last_error` says why.
    case failed
    /// Stopped by `forward.stop` or the cluster's teardown.
    case stopped
}

/// A snapshot of one forward, for `forward.list` and `cluster.status`.
public struct ForwardStatus: Sendable {
    public var id: String
    public var spec: ForwardSpec
    public var localAddress: String
    public var localPort: Int
    public var state: ForwardState
    /// The pod connections reach now (for a service forward, the one it resolved).
    public var pod: String?
    public var podPort: Int?
    public var connectionsOpen: Int
    public var connectionsTotal: Int
    public var bytesIn: Int
    public var bytesOut: Int
    public var restarts: Int
    public var lastError: HostError?

    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "forward_id": .string(id),
            "namespace": .string(spec.namespace),
            "target": .string("\(spec.target.kind)/\(spec.target.name)"),
            "remote_port": .int(Int64(spec.remotePort)),
            "local_address": .string(localAddress),
            "local_port": .int(Int64(localPort)),
            "state": .string(state.rawValue),
            "pod": pod.map(JSONValue.string) ?? .null,
            "pod_port": podPort.map { .int(Int64($0)) } ?? .null,
            "connections_open": .int(Int64(connectionsOpen)),
            "connections_total": .int(Int64(connectionsTotal)),
            "bytes_in": .int(Int64(bytesIn)),
            "bytes_out": .int(Int64(bytesOut)),
            "restarts": .int(Int64(restarts)),
        ]
        object["last_error"] = lastError?.json ?? .null
        if case .service(let name) = spec.target { object["service"] = .string(name) }
        return .object(object)
    }
}
