import Foundation
import GuildNetCore
import GuildNetRuntime

/// `cluster.register`, `cluster.unregister`, `cluster.list`, `cluster.status`.
enum ClusterOps {
    static let all: [ControlOp] = [
        ControlOp("cluster.register", fields: ["cluster", "kubeconfig", "context", "settings"], changesRegistry: true) { params, context in
            let request = RegisterRequest(
                name: try params.string("cluster"),
                kubeconfig: try params.optionalString("kubeconfig"),
                context: try params.optionalString("context"),
                settings: try params.optionalObject("settings")
            )
            let result = try await context.host.register(request)
            return [
                "cluster": .string(result.cluster.name),
                "cluster_id": .string(result.cluster.key),
                "created": .bool(result.created),
                "state": .string(result.state.rawValue),
            ]
        },
        ControlOp("cluster.unregister", fields: ["cluster", "purge"], changesRegistry: true) { params, context in
            let result = try await context.host.unregister(try params.string("cluster"), purge: try params.optionalBool("purge") ?? false)
            return [
                "cluster": .string(result.cluster.name),
                "cluster_id": .string(result.cluster.key),
                "state": "stopped",
                "purged": .bool(result.purged),
                "teardown_seconds": .double(result.teardownSeconds),
            ]
        },
        ControlOp("cluster.list", fields: []) { _, context in
            let clusters = await context.host.list().map { summary -> JSONValue in
                [
                    "cluster": .string(summary.id.name),
                    "cluster_id": .string(summary.id.key),
                    "state": .string(summary.state.rawValue),
                ]
            }
            return ["clusters": .array(clusters)]
        },
        ControlOp("cluster.status", fields: ["cluster"]) { params, context in
            let status = await (try await context.cluster(params)).status()
            return render(status)
        },
    ]

    static func render(_ status: ClusterStatus) -> JSONValue {
        var object: [String: JSONValue] = [
            "cluster": .string(status.id.name),
            "cluster_id": .string(status.id.key),
            "state": .string(status.state.rawValue),
            "created_at": .double(status.createdAt.timeIntervalSince1970),
            "children": .array(status.children.map(render)),
        ]
        if let error = status.lastError { object["last_error"] = error.json }
        return .object(object)
    }

    static func render(_ child: ChildStatus) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(child.id),
            "state": .string(child.state.rawValue),
            "restarts": .int(Int64(child.restarts)),
        ]
        if !child.details.isEmpty { object["details"] = .object(child.details) }
        if let error = child.lastError { object["last_error"] = error.json }
        return .object(object)
    }

}
