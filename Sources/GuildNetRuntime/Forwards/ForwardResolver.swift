import GuildNetCore
import GuildNetKube

/// Finds the pod and pod port a forward reaches now: for a pod, checks it is `Running`; for a
/// service, picks a ready, running pod its selector matches and maps the service port to that
/// pod's target port (by number or by container port name), as `kubectl port-forward svc/…` does.
/// Reads the cluster's pod informer when one runs and has synced, the API server otherwise.
struct ForwardResolver: Sendable {
    let client: KubeClient
    let kube: ClusterKube

    struct Resolved: Sendable, Equatable {
        var pod: String
        var port: Int
    }

    /// - Parameter avoiding: a pod known to be gone (a service forward picks another).
    /// - Throws: `k8s_not_found` (no such pod or service, with `pod_gone` once the forward ran),
    ///   `pod_not_running`, `service_no_ready_pod`, `invalid_field` (the service has no such port).
    func resolve(_ spec: ForwardSpec, avoiding: String? = nil) async throws -> Resolved {
        switch spec.target {
        case .pod(let name):
            let pod = try await client.get(.pods, namespace: spec.namespace, name: name)
            let phase = pod["status"]?["phase"]?.stringValue ?? "Unknown"
            guard phase == "Running", pod["metadata"]?["deletionTimestamp"] == nil else {
                throw HostError(
                    .podNotRunning, "pod \(spec.namespace)/\(name) is not running (phase \(phase)); only a Running pod can be forwarded to")
            }
            return Resolved(pod: name, port: spec.remotePort)
        case .service(let name):
            let service = try await client.get(.services, namespace: spec.namespace, name: name)
            guard let selector = service["spec"]?["selector"]?.objectValue, !selector.isEmpty else {
                throw HostError(.serviceNoReadyPod, "service \(spec.namespace)/\(name) has no selector, so it selects no pod to forward to")
            }
            let ports = service["spec"]?["ports"]?.arrayValue ?? []
            guard let servicePort = ports.first(where: { $0["port"]?.intValue == Int64(spec.remotePort) }) else {
                let known = ports.compactMap { $0["port"]?.intValue }.map(String.init).joined(separator: ", ")
                throw HostError(.invalidField, "service \(spec.namespace)/\(name) has no port \(spec.remotePort) (ports: \(known))")
            }
            let labels = selector.compactMapValues(\.stringValue)
            let candidates = try await pods(namespace: spec.namespace, matching: labels)
                .filter { Self.isReady($0) && Self.name(of: $0) != avoiding }
                .sorted { Self.name(of: $0) < Self.name(of: $1) }
            for pod in candidates {
                if let port = Self.targetPort(servicePort, in: pod, servicePort: spec.remotePort) {
                    return Resolved(pod: Self.name(of: pod), port: port)
                }
            }
            throw HostError(.serviceNoReadyPod, "service \(spec.namespace)/\(name) selects no ready, running pod for port \(spec.remotePort)")
        }
    }

    /// Pods of `namespace` whose labels include `labels`.
    private func pods(namespace: String, matching labels: [String: String]) async throws -> [JSONValue] {
        if let informer = await kube.syncedInformer(.pods, namespace: namespace) {
            return await informer.snapshot().filter { pod in
                guard pod["metadata"]?["namespace"]?.stringValue == namespace else { return false }
                let podLabels = pod["metadata"]?["labels"]?.objectValue ?? [:]
                return labels.allSatisfy { podLabels[$0.key]?.stringValue == $0.value }
            }
        }
        let selector = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return try await client.listAll(.pods, namespace: namespace, labelSelector: selector).items
    }

    static func name(of pod: JSONValue) -> String { pod["metadata"]?["name"]?.stringValue ?? "" }

    /// Running, not being deleted, and Ready (a pod without conditions counts as ready).
    static func isReady(_ pod: JSONValue) -> Bool {
        guard pod["status"]?["phase"]?.stringValue == "Running", pod["metadata"]?["deletionTimestamp"] == nil else { return false }
        guard let conditions = pod["status"]?["conditions"]?.arrayValue,
            let ready = conditions.first(where: { $0["type"]?.stringValue == "Ready" })
        else { return true }
        return ready["status"]?.stringValue == "True"
    }

    /// The pod port a service port leads to: `targetPort` as a number, or as the name of one of
    /// the pod's container ports; the service port itself when `targetPort` is absent.
    static func targetPort(_ servicePort: JSONValue, in pod: JSONValue, servicePort number: Int) -> Int? {
        switch servicePort["targetPort"] {
        case nil, .null?:
            return number
        case .string(let portName)?:
            if let numeric = Int(portName) { return numeric }
            for container in pod["spec"]?["containers"]?.arrayValue ?? [] {
                for port in container["ports"]?.arrayValue ?? [] where port["name"]?.stringValue == portName {
                    if let value = port["containerPort"]?.intValue { return Int(value) }
                }
            }
            return nil
        case let value?:
            return value.intValue.map { Int($0) }
        }
    }
}
