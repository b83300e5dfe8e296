import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Registrations survive a restart of the built `hostapp`: each registered cluster has a
/// `clusters/<id>/registration.json` record; `serve --restore eager|lazy` brings every one back with
/// its data and credentials, `cluster.unregister` removes it, and a SIGKILL leaves whole records.
@Suite("hostapp restores its registrations", .serialized)
struct RestoreEndToEndTests {
    typealias E = SubsystemsEndToEndTests
    static let rethinkPassword = "restore-rethink-pw-6f1c"

    /// One daemon on `state`, its client, then SIGTERM and a clean exit; every log line is handed back.
    static func withDaemon(
        _ state: String, restore: String? = nil, _ body: (ControlClient, HostappProcess) async throws -> Void
    ) async throws -> [String] {
        let daemon = try HostappProcess(stateDirectory: state, extra: restore.map { ["--restore", $0] } ?? [])
        defer { daemon.terminate() }
        _ = try await daemon.waitUntilReady()
        let client = try await daemon.client()
        try await body(client, daemon)
        await client.close()
        daemon.terminate()  // SIGTERM
        #expect(try await daemon.waitForExit() == 0)
        return daemon.logLines
    }

    static func listed(_ client: ControlClient) async throws -> [String: String] {
        let list = try await E.call(client, "l", ["op": "cluster.list"])
        var states: [String: String] = [:]
        for entry in list["clusters"]?.arrayValue ?? [] {
            if let name = entry["cluster"]?.stringValue { states[name] = entry["state"]?.stringValue ?? "" }
        }
        return states
    }

    static func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int
    }

    /// The data of a cluster is reachable: its DB value, its API server (stored kubeconfig) and its
    /// RethinkDB (stored password).
    static func expectData(_ client: ControlClient, _ cluster: String) async throws {
        let value = try await E.call(client, "g", ["op": "db.get", "cluster": .string(cluster), "key": "greeting"])
        #expect(value["value"] == .string("hello from \(cluster)"))
        let pods = try await E.call(client, "k", ["op": "k8s.list", "cluster": .string(cluster), "resource": "pods", "namespace": "default"])
        #expect(pods["items"]?.arrayValue != nil)
        _ = try await E.call(client, "q", ["op": "rethink.query", "cluster": .string(cluster), "query": ["table": "jobs"]])
    }

    @Test("two clusters come back after SIGTERM in eager and lazy mode; unregister forgets one for good")
    func survivesRestarts() async throws {
        var rethinkOptions = RethinkSimOptions()
        rethinkOptions.users = ["admin": "", "app": Self.rethinkPassword]
        try await RethinkSim.withRunning(options: rethinkOptions) { rethink, rethinkEndpoint in
            try await rethink.createTable("jobs", database: "test")
            try await KubeSim.withRunning { kube, kubeEndpoint in
                let dir = TemporaryDirectory("e2e-restore")
                defer { dir.remove() }
                let kubeconfig = dir.path + "/sim.kubeconfig"
                try kube.writeKubeconfig(to: kubeconfig, endpoint: kubeEndpoint)
                let state = dir.path + "/state"
                var logs: [String] = []

                logs += try await Self.withDaemon(state) { client, _ in
                    for cluster in ["alpha", "beta"] {
                        _ = try await E.call(
                            client, "r",
                            [
                                "op": "cluster.register", "cluster": .string(cluster), "kubeconfig": .string(kubeconfig),
                                "settings": [
                                    "rethinkdb.address": .string("\(rethinkEndpoint.host):\(rethinkEndpoint.port)"), "rethinkdb.user": "app",
                                    "rethinkdb.password": .string(Self.rethinkPassword),
                                ],
                            ])
                        _ = try await E.call(
                            client, "p", ["op": "db.put", "cluster": .string(cluster), "key": "greeting", "value": .string("hello from \(cluster)")])
                        try await Self.expectData(client, cluster)
                    }
                }
                for cluster in ["alpha", "beta"] {
                    let directory = state + "/clusters/" + cluster
                    let record = try String(contentsOfFile: directory + "/registration.json", encoding: .utf8)
                    #expect(record.contains("\"name\":\"\(cluster)\""), "\(record)")
                    #expect(!record.contains(Self.rethinkPassword) && !record.contains(kube.options.token))
                    for file in ["registration.json", "kubeconfig", "settings.json"] {
                        #expect(Self.mode(directory + "/" + file) == 0o600, "\(file) must be mode 0600")
                    }
                }

                // Eager (the default): both listed, started without a request, with their data.
                logs += try await Self.withDaemon(state) { client, daemon in
                    #expect(Set(try await Self.listed(client).keys) == ["alpha", "beta"])
                    try await eventually("both restored clusters ready", timeout: .seconds(30)) {
                        try await Self.listed(client) == ["alpha": "ready", "beta": "ready"]
                    }
                    for cluster in ["alpha", "beta"] { try await Self.expectData(client, cluster) }
                    #expect(daemon.logRecords.contains { $0["event"] == "clusters_restored" && $0["mode"] == "eager" && $0["clusters"] == "2" })
                }

                // Lazy: both idle until used; a request starts only its own cluster.
                logs += try await Self.withDaemon(state, restore: "lazy") { client, _ in
                    #expect(try await Self.listed(client) == ["alpha": "idle", "beta": "idle"])
                    let status = try await E.call(client, "s", ["op": "host.status"])
                    #expect(status["resources"]?["cluster_actors"] == 0, "an idle cluster costs no actor")
                    try await Self.expectData(client, "alpha")
                    let states = try await Self.listed(client)
                    #expect(states["alpha"] == "ready")
                    #expect(states["beta"] == "idle")
                    // Unregistering an idle cluster removes its record without starting it.
                    let unregistered = try await E.call(client, "u", ["op": "cluster.unregister", "cluster": "beta"])
                    #expect(unregistered["state"] == "stopped")
                    #expect(try await Self.listed(client) == ["alpha": "ready"])
                }
                #expect(!FileManager.default.fileExists(atPath: state + "/clusters/beta/registration.json"))
                #expect(FileManager.default.fileExists(atPath: state + "/clusters/beta/local.db"), "unregister without purge keeps the data")

                for mode in ["eager", "lazy"] {
                    logs += try await Self.withDaemon(state, restore: mode) { client, _ in
                        #expect(Set(try await Self.listed(client).keys) == ["alpha"], "beta stays unregistered (\(mode))")
                        try await Self.expectData(client, "alpha")
                    }
                }
                // Unregistering a running cluster: nothing comes back.
                logs += try await Self.withDaemon(state) { client, _ in
                    _ = try await E.call(client, "u", ["op": "cluster.unregister", "cluster": "alpha"])
                }
                logs += try await Self.withDaemon(state, restore: "lazy") { client, _ in
                    let states = try await Self.listed(client)
                    #expect(states.isEmpty)
                }
                let text = logs.joined(separator: "\n")
                #expect(!text.contains(Self.rethinkPassword), "the RethinkDB password reached the daemon's logs")
                #expect(!text.contains(kube.options.token), "the API token reached the daemon's logs")
            }
        }
    }

    @Test("SIGKILL while clusters register leaves whole records: every restored cluster is one that registered, with its data")
    func survivesSIGKILL() async throws {
        let dir = TemporaryDirectory("e2e-restore-kill")
        defer { dir.remove() }
        let state = dir.path + "/state"
        let daemon = try HostappProcess(stateDirectory: state)
        defer { daemon.terminate() }
        _ = try await daemon.waitUntilReady()
        let client = try await daemon.client()
        // Three acknowledged before the kill…
        for index in 0..<3 {
            _ = try await E.call(client, "r\(index)", ["op": "cluster.register", "cluster": .string("kept-\(index)")])
            _ = try await E.call(client, "p\(index)", ["op": "db.put", "cluster": .string("kept-\(index)"), "key": "k", "value": .int(Int64(index))])
        }
        // …and more in flight when it comes (pipelined on a second connection, replies not awaited).
        let storm = try await daemon.client()
        for index in 0..<20 {
            try await storm.send("{\"id\":\"s\(index)\",\"op\":\"cluster.register\",\"cluster\":\"storm-\(index)\"}")
        }
        try await eventually("some of the storm registered") {
            (try? FileManager.default.contentsOfDirectory(atPath: state + "/clusters"))?.contains { $0.hasPrefix("storm-") } ?? false
        }
        #expect(kill(daemon.process.processIdentifier, SIGKILL) == 0)
        _ = try await daemon.waitForExit()
        await client.close()
        await storm.close()

        _ = try await Self.withDaemon(state, restore: "eager") { client, restarted in
            let states = try await Self.listed(client)
            for index in 0..<3 {
                #expect(states["kept-\(index)"] != nil, "an acknowledged registration survives SIGKILL")
                let value = try await E.call(client, "g", ["op": "db.get", "cluster": .string("kept-\(index)"), "key": "k"])
                #expect(value["value"] == .int(Int64(index)))
            }
            for name in states.keys {
                #expect(name.hasPrefix("kept-") || name.hasPrefix("storm-"), "\(name)")
            }
            #expect(!restarted.logRecords.contains { $0["event"] == "registration_skipped" }, "no torn record")
            try await eventually("every restored cluster ready", timeout: .seconds(30)) {
                try await Self.listed(client).values.allSatisfy { $0 == "ready" }
            }
        }
    }
}
