import Foundation
import GuildNetCore

/// The simulated ReplicaSet `sim-<hash>` in `default`: `replicas` pods `sim-<5 chars>` (labels
/// `app: sim`), each backed by real loopback servers (``PodBackends``), the Service `sim` selecting
/// them and the Endpoints `sim` listing the ready ones. A deleted pod's backends close (cutting
/// connections to it) and a replacement is created under a new name, as a real cluster does.
actor SimReplicaSet {
    static let namespace = "default"
    static let appLabel = "sim"
    /// Kubernetes' name-suffix alphabet (no vowels, no look-alikes).
    private static let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")

    private let store: KubeStore
    private let backends: PodBackends
    private let replicas: Int
    private let templateHash: String
    private let uid = UUID().uuidString.lowercased()
    private var owned: Set<String> = []
    private var nextIP = 0

    init(store: KubeStore, backends: PodBackends, replicas: Int) {
        self.store = store
        self.backends = backends
        self.replicas = replicas
        templateHash = String((0..<10).map { _ in Self.alphabet.randomElement() ?? "b" })
    }

    var name: String { "sim-" + templateHash }

    /// Creates the Service, the pods with their backends and the Endpoints.
    func start() async throws {
        _ = try await store.create(.services, namespace: Self.namespace, object: Self.service)
        _ = try await store.create(
            .endpoints, namespace: Self.namespace, object: ["metadata": ["name": "sim", "labels": ["app": "sim"]], "subsets": []])
        await reconcile()
    }

    /// Follows pod changes until the stream ends (the sim stops).
    func run(changes: AsyncStream<Void>) async {
        for await _ in changes {
            await reconcile()
        }
    }

    /// Closes every backend.
    func stop() async {
        await backends.stopAll()
        owned.removeAll()
    }

    /// Brings the pods back to `replicas` and the Endpoints in line with the ready ones.
    func reconcile() async {
        let pods = await ownedPods()
        let present = Set(pods.compactMap { $0["metadata"]?["name"]?.stringValue })
        for gone in owned.subtracting(present) {
            await backends.stop(namespace: Self.namespace, name: gone)
            owned.remove(gone)
        }
        var all = pods
        var failures = 0
        while all.count < replicas && failures < 3 {
            do {
                all.append(try await createPod())
            } catch {
                failures += 1
            }
        }
        await syncEndpoints(all)
    }

    private func ownedPods() async -> [JSONValue] {
        let list = try? await store.list(
            .pods, namespace: Self.namespace, limit: nil, continueToken: nil,
            labels: KubeSelector("app=\(Self.appLabel)", isField: false), fields: KubeSelector(nil, isField: true))
        let items = list?["items"]?.arrayValue ?? []
        return items.filter { pod in
            (pod["metadata"]?["ownerReferences"]?.arrayValue ?? []).contains { $0["uid"]?.stringValue == uid }
        }
    }

    private func createPod() async throws -> JSONValue {
        var name = ""
        while name.isEmpty || owned.contains(name) || Self.exists(store.podPhases.phase(namespace: Self.namespace, name: name)) {
            name = "sim-" + String((0..<5).map { _ in Self.alphabet.randomElement() ?? "b" })
        }
        try await backends.start(namespace: Self.namespace, name: name)
        owned.insert(name)
        nextIP += 1
        do {
            return try await store.create(.pods, namespace: Self.namespace, object: pod(name: name, ip: "10.244.1.\(nextIP % 250 + 2)"))
        } catch {
            owned.remove(name)
            await backends.stop(namespace: Self.namespace, name: name)
            throw error
        }
    }

    private func pod(name: String, ip: String) -> JSONValue {
        let now = Date().formatted(.iso8601)
        let condition = { (type: String) -> JSONValue in ["type": .string(type), "status": "True", "lastTransitionTime": .string(now)] }
        return [
            "metadata": [
                "name": .string(name), "namespace": .string(Self.namespace),
                "labels": ["app": .string(Self.appLabel), "pod-template-hash": .string(templateHash)],
                "ownerReferences": [
                    [
                        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": .string(self.name), "uid": .string(uid),
                        "controller": true, "blockOwnerDeletion": true,
                    ]
                ],
            ],
            "spec": [
                "nodeName": "kubesim-node",
                "containers": [
                    [
                        "name": "app", "image": "registry.k8s.io/e2e-test-images/agnhost:2.52",
                        "ports": [
                            ["name": "http", "containerPort": .int(Int64(PodBackends.httpPort)), "protocol": "TCP"],
                            ["name": "echo", "containerPort": .int(Int64(PodBackends.echoPort)), "protocol": "TCP"],
                        ],
                    ]
                ],
            ],
            "status": [
                "phase": "Running", "podIP": .string(ip), "podIPs": [["ip": .string(ip)]], "hostIP": "10.0.0.10",
                "startTime": .string(now),
                "conditions": [condition("Initialized"), condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
            ],
        ]
    }

    private static var service: JSONValue {
        [
            "metadata": ["name": "sim", "labels": ["app": "sim"]],
            "spec": [
                "selector": ["app": "sim"], "type": "ClusterIP", "clusterIP": "10.96.0.100",
                "ports": [
                    ["name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"],
                    ["name": "echo", "port": 8080, "targetPort": 8080, "protocol": "TCP"],
                ],
            ],
        ]
    }

    private static func exists(_ phase: String?) -> Bool { phase != nil }

    static func isReady(_ pod: JSONValue) -> Bool {
        guard pod["status"]?["phase"]?.stringValue == "Running" else { return false }
        return (pod["status"]?["conditions"]?.arrayValue ?? []).contains {
            $0["type"]?.stringValue == "Ready" && $0["status"]?.stringValue == "True"
        }
    }

    private func syncEndpoints(_ pods: [JSONValue]) async {
        var ready: [JSONValue] = []
        var notReady: [JSONValue] = []
        let sorted = pods.sorted { ($0["metadata"]?["name"]?.stringValue ?? "") < ($1["metadata"]?["name"]?.stringValue ?? "") }
        for pod in sorted {
            guard let name = pod["metadata"]?["name"]?.stringValue else { continue }
            let address: JSONValue = [
                "ip": pod["status"]?["podIP"] ?? "", "nodeName": "kubesim-node",
                "targetRef": [
                    "kind": "Pod", "namespace": .string(Self.namespace), "name": .string(name), "uid": pod["metadata"]?["uid"] ?? "",
                ],
            ]
            if Self.isReady(pod) { ready.append(address) } else { notReady.append(address) }
        }
        var subset: [String: JSONValue] = [
            "ports": [
                ["name": "http", "port": 80, "protocol": "TCP"],
                ["name": "echo", "port": 8080, "protocol": "TCP"],
            ]
        ]
        if !ready.isEmpty { subset["addresses"] = .array(ready) }
        if !notReady.isEmpty { subset["notReadyAddresses"] = .array(notReady) }
        let subsets: JSONValue = ready.isEmpty && notReady.isEmpty ? [] : [.object(subset)]
        _ = try? await store.patch(.endpoints, namespace: Self.namespace, name: "sim", patch: ["subsets": subsets])
    }
}
