import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// The built `hostapp` on a legacy DB in the Go app's credential shapes (written and encrypted by
/// scripts/referee/go_credentials_fixture.py with Python `cryptography`) whose kubeconfigs name a
/// KubeSim: `migrate-db --all --commit`, then a per-cluster and a `legacy-global` daemon each
/// reach the KubeSim with the migrated (or legacy) kubeconfig.
@Suite("hostapp with the Go app's credentials")
struct GoCredentialsEndToEndTests {
    static let key = "e2e-go-master-key"

    static func call(_ client: ControlClient, _ id: String, _ fields: [String: JSONValue]) async throws -> JSONValue {
        var request = fields
        request["id"] = .string(id)
        return try JSONParser.parse(try await client.request(JSONValue.object(request).jsonString, id: id, timeout: .seconds(30)))
    }

    /// Registers `cluster` (no kubeconfig given: the daemon uses its own) and lists pods.
    static func registerAndList(_ client: ControlClient, _ cluster: String) async throws -> (state: JSONValue?, list: JSONValue) {
        let registered = try await call(client, "r-\(cluster)", ["op": "cluster.register", "cluster": .string(cluster)])
        let list = try await call(client, "l-\(cluster)", ["op": "k8s.list", "cluster": .string(cluster), "resource": "pods", "namespace": "default"])
        return (registered["result"]?["state"], list)
    }

    @Test func migratedAndLegacyClustersReachTheirKubeSim() async throws {
        try await KubeSim.withRunning { kube, endpoint in
            let dir = TemporaryDirectory("e2e-go")
            defer { dir.remove() }
            let state = dir.path + "/state"
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            let kubeconfig = dir.path + "/sim.kubeconfig"
            try kube.writeKubeconfig(to: kubeconfig, endpoint: endpoint)
            _ = try await kube.create(
                .pods, namespace: "default",
                [
                    "apiVersion": "v1", "kind": "Pod", "metadata": ["name": "go-pod", "namespace": "default"],
                    "spec": ["containers": [["name": "c", "image": "i"]]],
                ])
            let fixture = try await runProcess(
                URL(fileURLWithPath: "/usr/bin/env"),
                [
                    "python3", Repository.root + "/scripts/referee/go_credentials_fixture.py", "--db", state + "/guildnet.sqlite", "--key", Self.key,
                    "--kubeconfig-file", kubeconfig,
                ])
            #expect(fixture.exitCode == 0, "python3 with `cryptography` is required: \(fixture.output)")

            let migrated = try await runHostapp(["migrate-db", "--state-dir", state, "--all", "--commit"], environment: ["GUILDNET_MASTER_KEY": Self.key])
            #expect(migrated.exitCode == 0, "\(migrated.output)")
            let lines = migrated.output.split(separator: "\n")
            for name in ["plain", "plain-flagged", "enc-flagged", "enc-unflagged"] {
                #expect(lines.contains { $0.hasPrefix("migrated \(name): ") && $0.contains("kubeconfig yes") }, "\(migrated.output)")
            }
            #expect(lines.contains { $0.hasPrefix("migrated wrong-key: ") && $0.contains("kubeconfig no") }, "\(migrated.output)")
            #expect(migrated.output.contains("credentials/cl:wrong-key:kubeconfig=left_in_place"))
            #expect(!migrated.output.contains(kube.options.token))

            // Per-cluster: the migrated kubeconfig files.
            let perCluster = try HostappProcess(stateDirectory: state)
            defer { perCluster.terminate() }
            _ = try await perCluster.waitUntilReady()
            var client = try await perCluster.client()
            for name in ["plain", "enc-flagged", "enc-unflagged"] {
                let (registered, list) = try await Self.registerAndList(client, name)
                #expect(registered == "ready", "\(name)")
                #expect(list["ok"] == true, "\(name): \(list.jsonString)")
                #expect(list["result"]?["items"]?.arrayValue?.contains { $0["metadata"]?["name"] == "go-pod" } == true, "\(name)")
            }
            let (wrongState, wrongList) = try await Self.registerAndList(client, "wrong-key")
            #expect(wrongState == "ready")
            #expect(wrongList["error"]?["code"] == "kubeconfig_invalid", "\(wrongList.jsonString)")
            await client.close()
            perCluster.terminate()
            _ = try await perCluster.waitForExit()

            // legacy-global: the same records, read from guildnet.sqlite with the Go app's rules.
            let legacy = try HostappProcess(
                stateDirectory: state, extra: ["--storage-layout", "legacy-global"], environment: ["GUILDNET_MASTER_KEY": Self.key])
            defer { legacy.terminate() }
            _ = try await legacy.waitUntilReady()
            client = try await legacy.client()
            for name in ["plain", "plain-flagged", "enc-flagged", "enc-unflagged"] {
                let (registered, list) = try await Self.registerAndList(client, name)
                #expect(registered == "ready", "\(name)")
                #expect(list["ok"] == true, "\(name): \(list.jsonString)")
                #expect(list["result"]?["items"]?.arrayValue?.contains { $0["metadata"]?["name"] == "go-pod" } == true, "\(name)")
            }
            // A record the key does not open: the cluster's Kubernetes side reports it, never the value.
            let wrong = try await Self.call(client, "r-wrong", ["op": "cluster.register", "cluster": "wrong-key"])
            #expect(wrong["result"]?["state"] == "degraded", "\(wrong.jsonString)")
            let status = try await Self.call(client, "s-wrong", ["op": "cluster.status", "cluster": "wrong-key"])
            let kubeChild = status["result"]?["children"]?.arrayValue?.first { $0["id"] == "kube" }
            #expect(kubeChild?["last_error"]?["code"] == "kubeconfig_invalid", "\(status.jsonString)")
            #expect(kubeChild?["last_error"]?["message"]?.stringValue?.contains("does not decrypt under the given GUILDNET_MASTER_KEY") == true)
            await client.close()
            let logs = (perCluster.logLines + legacy.logLines).joined(separator: "\n")
            #expect(!logs.contains(kube.options.token), "the API token reached the daemon's logs")
        }
    }
}
