import GuildNetCore
import GuildNetKube
import GuildNetRuntime

/// `k8s.get`, `k8s.list`, `k8s.watch`, `k8s.unwatch` through the cluster's own client and informers.
enum KubeOps {
    /// Default and largest per-subscriber buffer of `k8s.watch` (events queued for a slow reader).
    static let defaultWatchBuffer: Int64 = 10_000
    static let maxWatchBuffer: Int64 = 1_000_000

    static let all: [ControlOp] = [
        ControlOp("k8s.get", fields: ["cluster", "resource", "namespace", "name"]) { params, context in
            let resource = try KubeAPIResource.parse(try params.string("resource"))
            let name = try params.string("name")
            let client = try await context.cluster(params).kube.requireClient()
            let object = try await client.get(resource, namespace: try params.optionalString("namespace"), name: name)
            return ["object": object]
        },
        ControlOp("k8s.list", fields: ["cluster", "resource", "namespace", "source"]) { params, context in
            let resource = try KubeAPIResource.parse(try params.string("resource"))
            let namespace = try params.optionalString("namespace")
            let source = try params.optionalString("source") ?? "auto"
            guard ["auto", "cache", "api"].contains(source) else {
                throw HostError(.invalidField, "field \"source\" must be auto, cache or api, got \(String(reflecting: source))")
            }
            let kube = try await context.cluster(params).kube
            var reply: [String: JSONValue] = ["resource": .string(resource.description), "namespace": namespace.map(JSONValue.string) ?? .null]
            if source != "api", let informer = await kube.syncedInformer(resource, namespace: namespace) {
                let status = await informer.status()
                reply["source"] = "cache"
                reply["resource_version"] = .string(status.resourceVersion)
                reply["items"] = .array(sorted(await informer.snapshot()))
                return .object(reply)
            }
            if source == "cache" {
                // Start the informer so a later cache read succeeds, and say it is not ready yet.
                _ = try await kube.informer(resource, namespace: namespace)
                throw HostError(.clusterNotReady, "the cache of \(resource) is not synced yet; retry, or use \"source\":\"api\"")
            }
            let client = try await kube.requireClient()
            let page = try await client.listAll(resource, namespace: namespace)
            reply["source"] = "api"
            reply["resource_version"] = .string(page.resourceVersion)
            reply["items"] = .array(sorted(page.items))
            return .object(reply)
        },
        ControlOp("k8s.watch", fields: ["cluster", "resource", "namespace", "initial", "buffer"]) { params, context in
            let resource = try KubeAPIResource.parse(try params.string("resource"))
            let namespace = try params.optionalString("namespace")
            let initial = try params.optionalBool("initial") ?? true
            let buffer = try params.optionalInt("buffer", in: 1...maxWatchBuffer) ?? defaultWatchBuffer
            let cluster = try await context.cluster(params)
            let informer = try await cluster.kube.informer(resource, namespace: namespace)
            let (subscriberID, events) = await informer.subscribe(includeInitial: initial, bufferLimit: Int(buffer))
            let sub = try context.subscribe(
                EventSubscription(
                    kind: "k8s.watch",
                    cluster: cluster.id,
                    events: events,
                    render: render,
                    final: nil,
                    cancel: { await informer.unsubscribe(subscriberID) }
                ),
                idPrefix: "k8s")
            return [
                "sub": .string(sub), "resource": .string(resource.description),
                "namespace": informer.namespace.map(JSONValue.string) ?? .null,
            ]
        },
        ControlOp("k8s.unwatch", fields: ["cluster", "sub"]) { params, context in
            let sub = try params.string("sub")
            try await context.unsubscribe(sub, kind: "k8s.watch")
            return ["sub": .string(sub), "ended": true]
        },
    ]

    /// One informer event as the fields of a `k8s.watch` event line.
    @Sendable static func render(_ event: InformerEvent) -> [String: JSONValue] {
        switch event {
        case .added(let object): ["type": "ADDED", "object": object]
        case .modified(let object): ["type": "MODIFIED", "object": object]
        case .deleted(let object): ["type": "DELETED", "object": object]
        case .synced(let resourceVersion): ["type": "SYNCED", "resource_version": .string(resourceVersion)]
        case .overflowed(let dropped):
            [
                "type": "END",
                "reason": HostError(.subscriptionLimit, "the client read too slowly: \(dropped) events were dropped; watch again to resync").json,
            ]
        case .finished(let error): ["type": "END", "reason": error.json]
        }
    }

    /// Objects ordered by namespace, then name, so replies are stable.
    static func sorted(_ objects: [JSONValue]) -> [JSONValue] {
        func key(_ object: JSONValue) -> (String, String) {
            guard case .object(let fields) = object, case .object(let metadata)? = fields["metadata"] else { return ("", "") }
            var namespace = ""
            var name = ""
            if case .string(let value)? = metadata["namespace"] { namespace = value }
            if case .string(let value)? = metadata["name"] { name = value }
            return (namespace, name)
        }
        return objects.sorted { key($0) < key($1) }
    }
}
