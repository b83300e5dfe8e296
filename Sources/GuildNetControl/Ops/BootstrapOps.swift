import GuildNetCore
import GuildNetRuntime

/// `cluster.bootstrap` (register a cluster from a `guildnet.config` join bundle, rolled back on
/// failure) and `cluster.export-config` (write a bundle for a registered cluster). Admin ops:
/// both are audited in `<state-dir>/audit/admin.log`.
enum BootstrapOps {
    static let all: [ControlOp] = [
        ControlOp("cluster.bootstrap", fields: ["path", "cluster", "dry_run"], changesRegistry: true) { params, context in
            var request = BootstrapRequest(path: try params.string("path"), cluster: try params.optionalString("cluster"))
            request.dryRun = try params.optionalBool("dry_run") ?? false
            return try await context.host.bootstrap(request)
        },
        ControlOp("cluster.export-config", fields: ["cluster", "path"]) { params, context in
            try await context.host.exportConfig(cluster: try params.string("cluster"), to: try params.string("path"))
        },
    ]
}
