import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// Issue 12 through the built `hostapp serve`: a scrape of a daemon whose cluster uses every
/// subsystem passes `promtool check metrics` and names only documented families; the JSON log
/// lines of a lifecycle carry their event codes, levels and hints; admin operations are audited.
@Suite("observability end to end")
struct ObservabilityEndToEndTests {
    typealias E = SubsystemsEndToEndTests

    /// Family names of a Prometheus text exposition (`# TYPE name kind` lines).
    static func families(_ exposition: String) -> Set<String> {
        Set(
            exposition.split(separator: "\n").compactMap { line -> String? in
                let parts = line.split(separator: " ")
                guard parts.count == 4, parts[0] == "#", parts[1] == "TYPE" else { return nil }
                return String(parts[2])
            })
    }

    @Test("a daemon with store, kube, rethink, forward and route series passes promtool and exports only documented families")
    func everySubsystemPassesPromtool() async throws {
        var rethinkOptions = RethinkSimOptions()
        rethinkOptions.users = ["admin": "", "app": E.rethinkPassword]
        try await RethinkSim.withRunning(options: rethinkOptions) { rethink, rethinkEndpoint in
            try await rethink.createTable("jobs", database: "test")
            var kubeOptions = KubeSimOptions()
            kubeOptions.simulatedPods = 1
            try await KubeSim.withRunning(options: kubeOptions) { kube, kubeEndpoint in
                let dir = TemporaryDirectory("e2e-obs")
                defer { dir.remove() }
                let kubeconfig = dir.path + "/sim.kubeconfig"
                try kube.writeKubeconfig(to: kubeconfig, endpoint: kubeEndpoint)
                let daemon = try HostappProcess(stateDirectory: dir.path + "/state", extra: ["--metrics-addr", "127.0.0.1:0"])
                defer { daemon.terminate() }
                let ready = try await daemon.waitUntilReady()
                let port = try #require(Int(ready["metrics_port"]?.stringValue ?? ""))
                let client = try await daemon.client()
                _ = try await E.call(
                    client, "r",
                    [
                        "op": "cluster.register", "cluster": "obs", "kubeconfig": .string(kubeconfig),
                        "settings": [
                            "rethinkdb.address": .string("\(rethinkEndpoint.host):\(rethinkEndpoint.port)"), "rethinkdb.user": "app",
                            "rethinkdb.password": .string(E.rethinkPassword), "forward.health_interval_ms": 200,
                        ],
                    ])
                _ = try await E.call(client, "p", ["op": "db.put", "cluster": "obs", "key": "k", "value": 1])
                _ = try await E.call(client, "d", ["op": "db.delete", "cluster": "obs", "key": "k"])
                let watch = try #require(
                    try await E.call(client, "w", ["op": "k8s.watch", "cluster": "obs", "resource": "pods", "namespace": "default"])["sub"]?.stringValue)
                while try await E.next(client, sub: watch)["type"] != "SYNCED" {}
                _ = try await E.call(client, "f", ["op": "rethink.changes", "cluster": "obs", "query": ["table": "jobs", "changes": true]])
                try await rethink.insert([["id": "job-1"]], table: "jobs", database: "test")
                let forward = try await E.call(client, "fw", ["op": "forward.start", "cluster": "obs", "service": "sim", "remote_port": 8080])
                let localPort = Int(try #require(forward["local_port"]?.intValue))
                #expect(try await LoopbackTCP.exchange(port: localPort, send: [1, 2, 3], expect: 3) == [1, 2, 3])
                _ = try await E.call(client, "rp", ["op": "route.probe", "cluster": "obs"])

                // Every subsystem's series, sampled every 2 s, show up.
                let required: Set<String> = [
                    "hostapp_clusters_active", "hostapp_clusters_registered_total", "hostapp_clusters_unregistered_total",
                    "hostapp_db_open_failures_total", "hostapp_child_restarts_total", "hostapp_child_give_ups_total",
                    "hostapp_process_open_fds", "hostapp_process_resident_memory_bytes", "hostapp_supervised_tasks",
                    "hostapp_cluster_state", "hostapp_cluster_db_open", "hostapp_cluster_db_errors_total",
                    "hostapp_cluster_lifecycle_events_total", "hostapp_cluster_child_restarts_total",
                    "hostapp_cluster_k8s_api_requests_total", "hostapp_cluster_k8s_api_errors_total", "hostapp_cluster_k8s_informers",
                    "hostapp_cluster_k8s_informers_synced", "hostapp_cluster_k8s_watches_open", "hostapp_cluster_k8s_watch_events_total",
                    "hostapp_cluster_rethink_changefeeds_active", "hostapp_cluster_rethink_feed_events_total",
                    "hostapp_cluster_rethink_feed_gaps_total", "hostapp_cluster_port_forwards_active",
                    "hostapp_cluster_port_forward_connections_total", "hostapp_cluster_port_forward_bytes_total",
                    "hostapp_cluster_route_requests_total", "hostapp_cluster_route_latency_seconds", "hostapp_cluster_route_current",
                ]
                var exposition = ""
                try await eventually("every subsystem's families in the scrape", timeout: .seconds(30)) {
                    exposition = try await httpGet(port: port, path: "/metrics").text
                    return required.isSubset(of: Self.families(exposition))
                        && exposition.contains("hostapp_cluster_k8s_informers_synced{cluster_id=\"obs\"} 1")
                        && exposition.contains("hostapp_cluster_state{cluster_id=\"obs\",state=\"ready\"} 1")
                }
                let promtool = try #require(locatePromtool(), "promtool not found: run scripts/install-test-tools.sh")
                let result = try await runProcess(promtool, ["check", "metrics"], input: Array(exposition.utf8))
                #expect(result.exitCode == 0, "promtool check metrics: \(result.output)\n\(exposition)")
                #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "promtool lint: \(result.output)")
                let documented = try MetricsDocumentation.documentedFamilies()
                let undocumented = Self.families(exposition).subtracting(documented)
                #expect(undocumented.isEmpty, "families missing from docs/operations.md, Metrics: \(undocumented.sorted())")
                await client.close()
                #expect(!daemon.logLines.joined().contains(E.rethinkPassword))
            }
        }
    }

    @Test("JSON log lines of a lifecycle carry ts, level, event, cluster_id, message and hints on errors")
    func lifecycleLogEvents() async throws {
        let dir = TemporaryDirectory("e2e-logs")
        defer { dir.remove() }
        let state = dir.path + "/state"
        let secret = "log-test-secret-\(UUID().uuidString)"
        let daemon = try HostappProcess(stateDirectory: state)
        defer { daemon.terminate() }
        _ = try await daemon.waitUntilReady()
        let client = try await daemon.client()
        let settings: JSONValue = ["rethinkdb.password": .string(secret)]
        _ = try await E.call(client, "r1", ["op": "cluster.register", "cluster": "logs", "settings": settings])
        _ = try await E.call(client, "u1", ["op": "cluster.unregister", "cluster": "logs"])
        // Break the DB: local.db becomes a directory, so every open fails until it is removed.
        let database = try #require(
            try FileManager.default.contentsOfDirectory(atPath: state + "/clusters").first.map { state + "/clusters/\($0)/local.db" })
        try? FileManager.default.removeItem(atPath: database)
        try FileManager.default.createDirectory(atPath: database, withIntermediateDirectories: false)
        let registered = try await E.call(client, "r2", ["op": "cluster.register", "cluster": "logs", "settings": settings])
        #expect(registered["state"] == "degraded", "\(registered.jsonString)")
        try await eventually("the store restarted at least once", timeout: .seconds(20)) {
            daemon.logRecords.contains { $0["event"] == "child_restarted" && $0["child"] == "store" }
        }
        // Repair it: the next restart opens the DB and the cluster is ready again.
        try FileManager.default.removeItem(atPath: database)
        try await eventually("the cluster is ready again", timeout: .seconds(30)) {
            daemon.logRecords.filter { $0["event"] == "ready" && $0["cluster_id"] == "logs" }.count >= 2
        }
        _ = try await E.call(client, "u2", ["op": "cluster.unregister", "cluster": "logs"])
        try await eventually("destroy logged twice") {
            daemon.logRecords.filter { $0["event"] == "destroy" && $0["cluster_id"] == "logs" }.count >= 2
        }
        await client.close()

        let records = daemon.logRecords
        #expect(records.count == daemon.logLines.count, "every stderr line is one JSON object")
        for record in records {
            for field in ["ts", "level", "event", "message"] {
                #expect(record[field]?.stringValue?.isEmpty == false, "\(field) missing: \(record.jsonString)")
            }
            let event = record["event"]?.stringValue ?? ""
            #expect(event == "log" || LogEventCatalog.byCode[event] != nil, "event \(event) is not in the documented table")
            if record["level"] == "error" || record["level"] == "critical" {
                #expect(record["hint"]?.stringValue?.isEmpty == false, "an error without a hint: \(record.jsonString)")
            }
        }
        func levels(of event: String) -> Set<String> {
            Set(records.filter { $0["event"] == .string(event) && $0["cluster_id"] == "logs" }.compactMap { $0["level"]?.stringValue })
        }
        for event in ["create", "start", "ready", "degraded", "child_restarted", "stop", "destroy"] {
            #expect(levels(of: event) == ["info"], "\(event): \(levels(of: event))")
        }
        #expect(levels(of: "child_failed") == ["error"])
        #expect(levels(of: "db_open_failed") == ["error"])
        let failed = try #require(records.first { $0["event"] == "db_open_failed" })
        #expect(failed["hint"]?.stringValue?.contains("local.db") == true, "\(failed.jsonString)")
        let childFailed = try #require(records.first { $0["event"] == "child_failed" })
        #expect(childFailed["child"] == "store" && childFailed["code"]?.stringValue?.isEmpty == false, "\(childFailed.jsonString)")
        #expect(!daemon.logLines.joined().contains(secret), "a credential reached the log")
        // The excerpt for the issue's note.
        let excerpt = records.filter { $0["cluster_id"] == "logs" && $0["event"] != "log" }.prefix(40).map(\.jsonString)
        print("log events excerpt:\n" + excerpt.joined(separator: "\n"))
    }

    @Test("admin operations leave one JSON line each in audit/admin.log (0600), with the operator's uid and no secret value")
    func adminOperationsAreAudited() async throws {
        let dir = TemporaryDirectory("e2e-audit")
        defer { dir.remove() }
        let state = dir.path + "/state"
        let secret = "audit-test-secret-\(UUID().uuidString)"
        let daemon = try HostappProcess(stateDirectory: state)
        defer { daemon.terminate() }
        _ = try await daemon.waitUntilReady()
        let client = try await daemon.client()
        _ = try await E.call(client, "r", ["op": "cluster.register", "cluster": "audited", "settings": ["rethinkdb.password": .string(secret)]])
        _ = try await E.call(client, "s", ["op": "settings.set", "cluster": "audited", "key": "rethinkdb.password", "value": .string(secret + "-2")])
        _ = try await E.call(client, "s2", ["op": "settings.set", "cluster": "audited", "settings": ["namespace": "team", "kube.qps": 10]])
        _ = try await E.call(client, "p", ["op": "db.put", "cluster": "audited", "key": "jobs/1", "value": ["token": .string(secret)]])
        _ = try await E.call(client, "d", ["op": "db.delete", "cluster": "audited", "key": "jobs/1"])
        _ = try await E.call(client, "u", ["op": "cluster.unregister", "cluster": "audited", "purge": true])
        let refused = try JSONParser.parse(
            try await client.request(#"{"id":"x","op":"db.delete","cluster":"audited","key":"k"}"#, id: "x"))
        #expect(refused["ok"] == false)
        let tail = try await E.call(client, "t", ["op": "audit.tail", "limit": 3])
        await client.close()

        let path = state + "/audit/admin.log"
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        print("admin.log:\n" + text)
        #expect(!text.contains(secret), "a secret value reached the audit log")
        let entries = try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(
            entries.map { $0["op"]?.stringValue ?? "" } == [
                "cluster.register", "settings.set", "settings.set", "db.delete", "cluster.unregister", "db.delete",
            ])
        for entry in entries {
            #expect(entry["time"]?.stringValue?.isEmpty == false)
            #expect(entry["operator"]?["transport"] == "socket")
            #expect(entry["operator"]?["uid"] == .int(Int64(getuid())), "\(entry.jsonString)")
            #expect(entry["cluster"] == "audited")
        }
        #expect(entries[0]["keys"] == ["rethinkdb.password"] && entries[0]["result"] == "ok")
        #expect(entries[1]["keys"] == ["rethinkdb.password"])
        #expect(entries[2]["keys"] == ["kube.qps", "namespace"])
        #expect(entries[3]["keys"] == ["jobs/1"])
        #expect(entries[4]["purge"] == true && entries[4]["result"] == "ok")
        #expect(entries[5]["result"] == "error" && entries[5]["code"] == "cluster_not_found")
        #expect(tail["entries"]?.arrayValue?.count == 3)
        #expect(tail["entries"]?.arrayValue?.last?["op"] == "db.delete")
    }

    @Test("on stdin the audit log names the --operator")
    func stdinOperatorIsAudited() async throws {
        let dir = TemporaryDirectory("e2e-audit-stdin")
        defer { dir.remove() }
        let requests = [
            #"{"id":1,"op":"cluster.register","cluster":"s1"}"#,
            #"{"id":2,"op":"db.delete","cluster":"s1","key":"k"}"#,
            #"{"id":3,"op":"cluster.unregister","cluster":"s1"}"#,
        ]
        let result = try await runHostapp(
            ["serve", "--stdin", "--state-dir", dir.path, "--operator", "alice", "--log-level", "error"],
            input: Array((requests.joined(separator: "\n") + "\n").utf8))
        #expect(result.exitCode == 0, "\(result.output)")
        let text = try String(contentsOfFile: dir.path + "/audit/admin.log", encoding: .utf8)
        let entries = try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(entries.map { $0["op"]?.stringValue ?? "" } == ["cluster.register", "db.delete", "cluster.unregister"])
        for entry in entries {
            #expect(entry["operator"] == ["transport": "stdin", "name": "alice"], "\(entry.jsonString)")
        }
    }
}
