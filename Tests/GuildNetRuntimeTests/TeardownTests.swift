import Foundation
import GuildNetCore
import GuildNetRuntime
import TestSupport
import Testing

@Suite("Teardown")
struct TeardownTests {
    @Test("50 clusters registered and unregistered leave no FD, task, actor or DB handle behind")
    func noLeaks() async throws {
        let dir = TemporaryDirectory("lk")
        defer { dir.remove() }
        try await withRunningHost(stateDirectory: dir.path) { host in
            let baseline = host.counters.snapshot
            for index in 0..<50 {
                _ = try await host.register(RegisterRequest(name: "leak-\(index)"))
                try await (try host.cluster(named: "leak-\(index)")).store.put("k", .int(Int64(index)))
            }
            #expect(!ProcessResources.openFiles(under: dir.path).isEmpty)
            for index in 0..<50 { _ = try await host.unregister("leak-\(index)") }
            #expect(ProcessResources.openFiles(under: dir.path).isEmpty, "\(ProcessResources.openFiles(under: dir.path))")
            try await eventually("counters back to baseline") { host.counters.snapshot == baseline }
            #expect(await host.budget.openCount == 0)
        }
    }

    @Test("after unregister the real sqlite3 CLI takes an exclusive lock at once")
    func noStaleLock() async throws {
        let dir = TemporaryDirectory("sl")
        defer { dir.remove() }
        let path = try await withRunningHost(stateDirectory: dir.path) { host in
            _ = try await host.register(RegisterRequest(name: "locky"))
            let cluster = try await host.cluster(named: "locky")
            try await cluster.store.put("k", "v")
            _ = try await host.unregister("locky")
            #expect(ProcessResources.openFiles(under: cluster.paths.directory).isEmpty)
            let result = try await runSQLite(cluster.store.path, ".timeout 0\nBEGIN EXCLUSIVE;\nSELECT value FROM kv WHERE key='k';\nCOMMIT;\n")
            #expect(result.exitCode == 0, "\(result.output)")
            #expect(result.output.contains("\"v\""))
            return cluster.store.path
        }
        let again = try await runSQLite(path, ".timeout 0\nBEGIN EXCLUSIVE;\nCOMMIT;\n")
        #expect(again.exitCode == 0)
    }

    @Test("metric series of an unregistered cluster disappear from the exposition")
    func metricsGone() async throws {
        let dir = TemporaryDirectory("mg")
        defer { dir.remove() }
        try await withRunningHost(stateDirectory: dir.path) { host in
            _ = try await host.register(RegisterRequest(name: "gone"))
            _ = try await host.register(RegisterRequest(name: "stays"))
            var text = String(decoding: host.configuration.metrics.exposition(), as: UTF8.self)
            #expect(text.contains("cluster_id=\"gone\""))
            #expect(text.contains("hostapp_clusters_active 2"))
            _ = try await host.unregister("gone")
            text = String(decoding: host.configuration.metrics.exposition(), as: UTF8.self)
            #expect(!text.contains("cluster_id=\"gone\""), "\(text)")
            #expect(text.contains("cluster_id=\"stays\""))
            #expect(text.contains("hostapp_clusters_active 1"))
        }
    }

    @Test("unregister with purge removes the cluster's directory; without purge data is kept")
    func purge() async throws {
        let dir = TemporaryDirectory("pg")
        defer { dir.remove() }
        try await withRunningHost(stateDirectory: dir.path) { host in
            _ = try await host.register(RegisterRequest(name: "keep"))
            _ = try await host.register(RegisterRequest(name: "drop"))
            let keep = try await host.cluster(named: "keep")
            let drop = try await host.cluster(named: "drop")
            _ = try await host.unregister("keep")
            _ = try await host.unregister("drop", purge: true)
            #expect(FileManager.default.fileExists(atPath: keep.store.path))
            #expect(!FileManager.default.fileExists(atPath: drop.paths.directory))
        }
    }

    @Test("credentials passed in settings never appear in logs")
    func credentialsNotLogged() async throws {
        let dir = TemporaryDirectory("cr")
        defer { dir.remove() }
        let logs = LogCapture()
        let secret = "s3cr3t-Hunter2-\(UUID().uuidString)"
        try await withRunningHost(stateDirectory: dir.path, logs: logs) { host in
            _ = try await host.register(RegisterRequest(name: "creds", settings: ["rethinkdb.password": .string(secret), "namespace": "apps"]))
            let cluster = try await host.cluster(named: "creds")
            _ = try await cluster.settings.set(["custom.api_token": .string(secret + "-token")])
            let setting = try #require(await cluster.settings.effective("rethinkdb.password"))
            #expect(setting.displayValue == SecretKeys.redacted)
            #expect(setting.value == .string(secret))
            _ = try await host.unregister("creds")
        }
        #expect(!logs.all.isEmpty)
        #expect(!logs.text.contains(secret))
        #expect(logs.contains("settings"))
    }
}

/// Runs the real sqlite3 CLI on `path` with `script` on stdin.
func runSQLite(_ path: String, _ script: String) async throws -> ProcessResult {
    try await runProcess(URL(fileURLWithPath: "/usr/bin/sqlite3"), [path], input: Array(script.utf8))
}

@Suite("Cluster files")
struct ClusterFilesTests {
    @Test("register writes the resolved context's kubeconfig (0600, self-contained) and records the identity")
    func kubeconfigCopy() async throws {
        let dir = TemporaryDirectory("kc")
        defer { dir.remove() }
        let source = dir.appending("source-kubeconfig")
        try "CA-PEM".write(toFile: dir.appending("ca.pem"), atomically: true, encoding: .utf8)
        try """
        apiVersion: v1
        kind: Config
        current-context: other
        clusters:
        - name: eu
          cluster: {server: "https://eu.example:6443", certificate-authority: ca.pem}
        - name: us
          cluster: {server: "https://us.example:6443"}
        users:
        - name: ops
          user: {token: tok-123}
        contexts:
        - name: prod-eu
          context: {cluster: eu, user: ops, namespace: apps}
        - name: other
          context: {cluster: us, user: ops}
        """.write(toFile: source, atomically: true, encoding: .utf8)
        try await withRunningHost(stateDirectory: dir.appending("state")) { host in
            _ = try await host.register(RegisterRequest(name: "Prod EU", kubeconfig: source, context: "prod-eu"))
            let cluster = try await host.cluster(named: "Prod EU")
            let written = try String(contentsOfFile: cluster.paths.kubeconfig, encoding: .utf8)
            #expect(written.contains("https://eu.example:6443"))
            #expect(!written.contains("us.example"))
            #expect(!written.contains("ca.pem"))
            #expect(written.contains("certificate-authority-data"))
            let mode = try FileManager.default.attributesOfItem(atPath: cluster.paths.kubeconfig)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            let identity = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: cluster.paths.identity))))
            #expect(identity["name"] == "Prod EU")
            #expect(identity["key"] == .string(cluster.id.key))
            #expect(identity["context"] == "prod-eu")

            // A broken kubeconfig is refused with the field named, and nothing is created for it.
            try "clusters: []\nusers: []\ncontexts: []\n".write(toFile: dir.appending("broken"), atomically: true, encoding: .utf8)
            do {
                _ = try await host.register(RegisterRequest(name: "broken", kubeconfig: dir.appending("broken"), context: "x"))
                Issue.record("a broken kubeconfig was accepted")
            } catch let error as HostError {
                #expect(error.code == .kubeconfigInvalid)
                #expect(error.message.contains("contexts"))
            }
            #expect(!FileManager.default.fileExists(atPath: dir.appending("state/clusters/broken")))
            #expect(await host.list().map(\.id.name) == ["Prod EU"])
        }
    }

    @Test("a directory recorded for another name is never reused")
    func identityCollision() async throws {
        let dir = TemporaryDirectory("ic")
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.path + "/clusters/x", withIntermediateDirectories: true)
        try #"{"key":"x","name":"someone else"}"#.write(toFile: dir.path + "/clusters/x/cluster.json", atomically: true, encoding: .utf8)
        try await withRunningHost(stateDirectory: dir.path) { host in
            do {
                _ = try await host.register(RegisterRequest(name: "x"))
                Issue.record("registered into another cluster's directory")
            } catch let error as HostError {
                #expect(error.code == .clusterIDCollision)
            }
            #expect(await host.list().isEmpty)
        }
    }
}
