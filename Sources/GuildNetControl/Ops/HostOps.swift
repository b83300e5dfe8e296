import Foundation
import GuildNetCore
import GuildNetRuntime

/// `host.status`, `host.shutdown`.
enum HostOps {
    static let version = "0.1.0"

    static let all: [ControlOp] = [
        ControlOp("host.status", fields: []) { _, context in
            let status = await context.host.status()
            var byState: [String: JSONValue] = [:]
            for (state, count) in status.clustersByState { byState[state.rawValue] = .int(Int64(count)) }
            return [
                "version": .string(version),
                "pid": .int(Int64(ProcessInfo.processInfo.processIdentifier)),
                "state_dir": .string(status.stateDirectory),
                "storage_layout": .string(status.storageLayout),
                "uptime_seconds": .double(status.uptimeSeconds),
                "clusters": .int(Int64(status.clusters)),
                "clusters_by_state": .object(byState),
                "open_databases": .int(Int64(status.openDatabases)),
                "resources": [
                    "cluster_actors": .int(Int64(status.resources.clusterActors)),
                    "cluster_children": .int(Int64(status.resources.clusterChildren)),
                    "supervised_tasks": .int(Int64(status.resources.supervisedTasks)),
                    "open_databases": .int(Int64(status.resources.openDatabases)),
                ],
                "memory_trim": status.memoryTrim.map { ["enabled": true, "pending": .bool($0.pending), "trims": .int(Int64($0.trims))] }
                    ?? ["enabled": false, "pending": false, "trims": 0],
                "shutting_down": .bool(status.shuttingDown),
            ]
        },
        ControlOp("host.shutdown", fields: []) { _, context in
            ["shutting_down": true, "clusters": .int(Int64(await context.host.list().count))]
        },
    ]
}
