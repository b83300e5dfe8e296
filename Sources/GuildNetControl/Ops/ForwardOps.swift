import GuildNetCore
import GuildNetRuntime
import GuildNetSettings

/// `forward.start`, `forward.list`, `forward.stop`: the cluster's port-forwards (see ``ClusterForwards``).
enum ForwardOps {
    static let all: [ControlOp] = [
        ControlOp("forward.start", fields: ["cluster", "namespace", "pod", "service", "remote_port", "local_port"]) { params, context in
            let pod = try params.optionalString("pod")
            let service = try params.optionalString("service")
            let target: ForwardTarget
            switch (pod, service) {
            case (let pod?, nil): target = .pod(pod)
            case (nil, let service?): target = .service(service)
            default:
                throw HostError(.invalidField, "give exactly one of \"pod\" or \"service\"")
            }
            if target.isEmptyName { throw HostError(.invalidField, "the pod or service name must not be empty") }
            let remotePort = try params.optionalInt("remote_port", in: 1...65_535)
            guard let remotePort else { throw HostError(.missingField, "missing field \"remote_port\" (1...65535)") }
            let localPort = try params.optionalInt("local_port", in: 0...65_535) ?? 0
            let cluster = try await context.cluster(params)
            let defaultNamespace = await cluster.settings.value(.namespace)
            let namespace = try params.optionalString("namespace") ?? defaultNamespace
            let spec = ForwardSpec(namespace: namespace, target: target, remotePort: Int(remotePort), localPort: Int(localPort))
            let status = try await cluster.forwards.startForward(spec)
            return [
                "forward_id": .string(status.id),
                "local_address": .string(status.localAddress),
                "local_port": .int(Int64(status.localPort)),
                "state": .string(status.state.rawValue),
                "pod": status.pod.map(JSONValue.string) ?? .null,
            ]
        },
        ControlOp("forward.list", fields: ["cluster"]) { params, context in
            var clusters: [ClusterActor] = []
            if try params.optionalString("cluster") != nil {
                clusters = [try await context.cluster(params)]
            } else {
                // An idle (lazily restored) cluster has no forwards; listing must not start it.
                for summary in await context.host.list() where summary.state != .idle {
                    if let cluster = try? await context.host.cluster(named: summary.id.name) { clusters.append(cluster) }
                }
            }
            var forwards: [JSONValue] = []
            for cluster in clusters {
                for status in await cluster.forwards.list() {
                    guard case .object(var object) = status.json else { continue }
                    object["cluster"] = .string(cluster.id.name)
                    forwards.append(.object(object))
                }
            }
            return ["forwards": .array(forwards)]
        },
        ControlOp("forward.stop", fields: ["cluster", "forward_id"]) { params, context in
            let id = try params.string("forward_id")
            let status = try await context.cluster(params).forwards.stopForward(id)
            return ["forward_id": .string(status.id), "state": .string(status.state.rawValue), "stopped": true]
        },
    ]
}

extension ForwardTarget {
    fileprivate var isEmptyName: Bool {
        switch self {
        case .pod(let name), .service(let name): name.isEmpty
        }
    }
}
