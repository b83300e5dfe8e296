import GuildNetCore
import GuildNetRuntime
import GuildNetSettings

/// `route.status`, `route.set`, `route.probe`: the cluster's API routes (see ``ClusterRoutes``).
enum RouteOps {
    static let all: [ControlOp] = [
        ControlOp("route.status", fields: ["cluster"]) { params, context in
            try await context.cluster(params).routes.status()
        },
        ControlOp("route.set", fields: ["cluster", "strategy"]) { params, context in
            let name = try params.string("strategy")
            guard SettingsSchema.routeStrategies.contains(name) else {
                throw HostError(
                    .invalidField,
                    "field \"strategy\" must be one of \(SettingsSchema.routeStrategies.joined(separator: ", ")), got \(String(reflecting: String(name.prefix(100))))"
                )
            }
            let routes = try await context.cluster(params).routes
            try await routes.setStrategy(RouteStrategy(setting: name))
            return await routes.status()
        },
        ControlOp("route.probe", fields: ["cluster"]) { params, context in
            let routes = try await context.cluster(params).routes
            try await routes.probe()
            return await routes.status()
        },
    ]
}
