import Foundation
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// The real kubectl (v1.32 via the /usr/bin/kubectl dispatcher) referees KubeSim.
@Suite("kubectl referee", .serialized)
struct KubectlRefereeTests {

    static func options(pods: Int = 0) -> KubeSimOptions {
        var options = KubeSimOptions()
        options.seedPods = pods
        return options
    }

    @Test("kubectl get --raw /version reports v1.32.4")
    func rawVersion() async throws {
        try await KubeSim.withRunning(options: Self.options()) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let result = try await kubectl.run("get", "--raw", "/version")
            #expect(result.exitCode == 0, "\(result.output)")
            let version = try JSONParser.parse(result.output)
            #expect(version["gitVersion"]?.stringValue == "v1.32.4")
            #expect(version["minor"]?.stringValue == "32")
        }
    }

    @Test("kubectl get pods -A lists the seeded pods")
    func getPodsAllNamespaces() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 3)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let result = try await kubectl.run("get", "pods", "-A")
            #expect(result.exitCode == 0, "\(result.output)")
            for index in 0..<3 {
                #expect(result.output.contains(String(format: "seed-pod-%05d", index)), "\(result.output)")
            }
        }
    }

    @Test("kubectl api-resources lists pods")
    func apiResources() async throws {
        try await KubeSim.withRunning(options: Self.options()) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let result = try await kubectl.run("api-resources")
            #expect(result.exitCode == 0, "\(result.output)")
            let podLine = result.output.split(separator: "\n").first { $0.hasPrefix("pods ") }
            #expect(podLine != nil, "\(result.output)")
            #expect(podLine?.contains("Pod") == true)
            #expect(result.output.contains("configmaps"))
        }
    }

    @Test("a wrong token is refused: exit 1, Unauthorized")
    func wrongTokenRefused() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint, user: .wrongToken)
            defer { kubectl.cleanUp() }
            // A plain request: kubectl decodes the 401 Status.
            let raw = try await kubectl.run("get", "--raw", "/api/v1/namespaces/default/pods")
            #expect(raw.exitCode == 1, "\(raw.output)")
            #expect(raw.output.contains("error: You must be logged in to the server (Unauthorized)"), "\(raw.output)")
            // Through discovery, kubectl 1.32's discovery client reports the 401 generically.
            let result = try await kubectl.run("get", "pods")
            #expect(result.exitCode == 1, "\(result.output)")
            #expect(result.output.contains("error: You must be logged in to the server"), "\(result.output)")
        }
    }

    @Test("a forbidden token gets 403 Forbidden")
    func forbiddenToken() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint, user: .forbiddenToken)
            defer { kubectl.cleanUp() }
            let result = try await kubectl.run("get", "pod", "seed-pod-00000")
            #expect(result.exitCode == 1, "\(result.output)")
            #expect(result.output.contains("Forbidden"), "\(result.output)")
        }
    }

    @Test("client-certificate auth works; an untrusted certificate is refused")
    func clientCertificate() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 2)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint, user: .clientCertificate)
            defer { kubectl.cleanUp() }
            let result = try await kubectl.run("get", "pod", "seed-pod-00001", "-o", "json")
            #expect(result.exitCode == 0, "\(result.output)")
            let pod = try JSONParser.parse(result.output)
            #expect(pod["status"]?["phase"]?.stringValue == "Running")

            let foreign = try Kubectl(sim: sim, endpoint: endpoint, user: .foreignClientCertificate)
            defer { foreign.cleanUp() }
            let refused = try await foreign.run("get", "pods")
            #expect(refused.exitCode != 0, "\(refused.output)")

            let anonymous = try Kubectl(sim: sim, endpoint: endpoint, user: .anonymous)
            defer { anonymous.cleanUp() }
            // Without credentials kubectl falls back to prompting for a username (stdin is empty).
            let unauth = try await anonymous.run("get", "--raw", "/api/v1/namespaces/default/pods")
            #expect(unauth.exitCode == 1, "\(unauth.output)")
            #expect(!unauth.output.contains("seed-pod"), "\(unauth.output)")
        }
    }

    @Test("kubectl get pods -w sees a pod created afterwards")
    func watchSeesNewPod() async throws {
        try await KubeSim.withRunning(options: Self.options(pods: 1)) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let watcher = try kubectl.start("get", "pods", "-w")
            defer { watcher.stop() }
            try await eventually("the initial list", timeout: .seconds(20)) { watcher.output.contains("seed-pod-00000") }
            try await eventually("the watch is open", timeout: .seconds(20)) { await sim.openWatchCount == 1 }
            _ = try await sim.create(.pods, ["metadata": ["name": "late-arrival"], "spec": ["containers": [["name": "c", "image": "x"]]]])
            try await eventually("the new pod on the watch", timeout: .seconds(20)) { watcher.output.contains("late-arrival") }
            #expect(watcher.exitCode == nil, "\(watcher.output)")
        }
    }

    @Test("kubectl apply creates, apply again patches, delete removes")
    func applyAndDelete() async throws {
        try await KubeSim.withRunning(options: Self.options()) { sim, endpoint in
            let kubectl = try Kubectl(sim: sim, endpoint: endpoint)
            defer { kubectl.cleanUp() }
            let manifest = kubectl.home.appending("cm.yaml")
            func write(_ value: String) throws {
                let yaml = """
                    apiVersion: v1
                    kind: ConfigMap
                    metadata:
                      name: settings
                      namespace: default
                    data:
                      mode: \(value)
                    """
                try Data(yaml.utf8).write(to: URL(fileURLWithPath: manifest))
            }
            try write("first")
            let created = try await kubectl.run("apply", "-f", manifest)
            #expect(created.exitCode == 0, "\(created.output)")
            #expect(created.output.contains("configmap/settings created"), "\(created.output)")
            #expect(!created.output.contains("warning"), "\(created.output)")

            let shown = try await kubectl.run("get", "configmap", "settings", "-o", "json")
            #expect(shown.exitCode == 0, "\(shown.output)")
            let object = try JSONParser.parse(shown.output)
            #expect(object["data"]?["mode"]?.stringValue == "first")
            let firstRV = object["metadata"]?["resourceVersion"]?.stringValue.flatMap { Int64($0) } ?? 0

            try write("second")
            let patched = try await kubectl.run("apply", "-f", manifest)
            #expect(patched.exitCode == 0, "\(patched.output)")
            #expect(patched.output.contains("configmap/settings configured"), "\(patched.output)")
            #expect(!patched.output.contains("warning"), "\(patched.output)")
            let stored = try await sim.get(.configmaps, name: "settings")
            #expect(stored["data"]?["mode"]?.stringValue == "second")
            let secondRV = stored["metadata"]?["resourceVersion"]?.stringValue.flatMap { Int64($0) } ?? 0
            #expect(secondRV > firstRV)
            #expect(stored["metadata"]?["annotations"]?["kubectl.kubernetes.io/last-applied-configuration"] != nil)

            let unchanged = try await kubectl.run("apply", "-f", manifest)
            #expect(unchanged.output.contains("configmap/settings unchanged"), "\(unchanged.output)")

            let deleted = try await kubectl.run("delete", "configmap", "settings")
            #expect(deleted.exitCode == 0, "\(deleted.output)")
            #expect(deleted.output.contains("configmap \"settings\" deleted"), "\(deleted.output)")
            await #expect(throws: KubeStatusError.self) { _ = try await sim.get(.configmaps, name: "settings") }

            let missing = try await kubectl.run("get", "configmap", "settings")
            #expect(missing.exitCode == 1)
            #expect(missing.output.contains("Error from server (NotFound)"), "\(missing.output)")
        }
    }
}
