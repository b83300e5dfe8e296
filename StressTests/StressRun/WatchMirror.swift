import GuildNetCore
import GuildNetSimulators

/// What one `k8s.watch` subscription says exists: name → resourceVersion, from its events.
final class WatchMirror: Sendable {
    private struct State {
        var objects: [String: String] = [:]
        var synced = false
        var endReason: String?
        var events = 0
    }

    let resource: KubeResource
    let namespace: String
    private let state = LockedValue(State())

    init(resource: KubeResource, namespace: String) {
        self.resource = resource
        self.namespace = namespace
    }

    func event(_ event: JSONValue) {
        state.withLock { state in
            state.events += 1
            let name = event["object"]?["metadata"]?["name"]?.stringValue
            let version = event["object"]?["metadata"]?["resourceVersion"]?.stringValue ?? ""
            switch event["type"]?.stringValue {
            case "ADDED", "MODIFIED":
                if let name { state.objects[name] = version }
            case "DELETED":
                if let name { state.objects.removeValue(forKey: name) }
            case "SYNCED":
                state.synced = true
            case "END":
                state.endReason = event["reason"]?["code"]?.stringValue ?? "none"
            default:
                break
            }
        }
    }

    var synced: Bool { state.withLock { $0.synced } }
    var endReason: String? { state.withLock { $0.endReason } }
    var events: Int { state.withLock { $0.events } }
    var objects: [String: String] { state.withLock { $0.objects } }

    /// The server's objects now, as name → resourceVersion.
    static func serverState(_ sim: KubeSim, _ resource: KubeResource, namespace: String) async throws -> [String: String] {
        let items = try await sim.list(resource, namespace: namespace)["items"]?.arrayValue ?? []
        var objects: [String: String] = [:]
        for item in items {
            guard let name = item["metadata"]?["name"]?.stringValue else { continue }
            objects[name] = item["metadata"]?["resourceVersion"]?.stringValue ?? ""
        }
        return objects
    }

    /// Whether the watch matches the server's final state exactly.
    func matches(_ sim: KubeSim) async throws -> Bool {
        try await Self.serverState(sim, resource, namespace: namespace) == objects
    }
}
