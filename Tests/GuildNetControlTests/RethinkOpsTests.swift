import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// `rethink.*` ops over a real control socket against RethinkSim over real TCP.
@Suite("rethink ops over the control socket")
struct RethinkOpsTests {
    static let password = "s3cret-rethink-pw"

    static func simOptions() -> RethinkSimOptions {
        var options = RethinkSimOptions()
        options.users = ["admin": "", "app": password]
        return options
    }

    @Test func queryChangesAndFinalEventOnUnregister() async throws {
        let logs = LogCapture()
        try await RethinkSim.withRunning(options: Self.simOptions()) { sim, endpoint in
            try await withHostOnSocket(logs: logs) { host, client, _ in
                _ = try await call(
                    client, "r",
                    [
                        "op": "cluster.register", "cluster": "r-a",
                        "settings": [
                            "rethinkdb.address": .string("\(endpoint.host):\(endpoint.port)"), "rethinkdb.user": "app",
                            "rethinkdb.password": .string(Self.password),
                        ],
                    ])
                let before = try await call(client, "s0", ["op": "rethink.status", "cluster": "r-a"])
                #expect(before["connected"] == false, "lazy: nothing connects before the first use")
                let warm = try await call(client, "w", ["op": "rethink.warmup", "cluster": "r-a"])
                #expect(warm["open_connections"] == 1)
                #expect(warm["server"]?["name"] != nil)
                #expect(warm["feed_events_per_second_limit"] == 10_000, "the default event budget of a cluster's feeds")
                #expect(warm["feed_throttled_turns"] == 0)

                _ = try await call(client, "db", ["op": "rethink.query", "cluster": "r-a", "query": ["dbCreate": "app"]])
                _ = try await call(client, "tb", ["op": "rethink.query", "cluster": "r-a", "query": ["db": "app", "tableCreate": "users"]])
                let inserted = try await call(
                    client, "i",
                    [
                        "op": "rethink.query", "cluster": "r-a",
                        "query": ["db": "app", "table": "users", "insert": [["id": 1, "name": "ada"], ["id": 2, "name": "bob"]]],
                    ])
                #expect(inserted["result"]?["inserted"] == 2)
                let read = try await call(client, "g", ["op": "rethink.query", "cluster": "r-a", "query": ["db": "app", "table": "users", "get": 1]])
                #expect(read["result"]?["name"] == "ada")

                let feed = try await call(
                    client, "f", ["op": "rethink.changes", "cluster": "r-a", "query": ["db": "app", "table": "users", "changes": true]])
                let sub = try #require(feed["sub"]?.stringValue)
                try await eventually("the feed is open on the server") { await sim.activeChangefeeds == 1 }
                _ = try await call(
                    client, "u",
                    ["op": "rethink.query", "cluster": "r-a", "query": ["db": "app", "table": "users", "get": 2, "chain": [["update": ["name": "bea"]]]]])
                let change = try await nextEvent(client, sub: sub)
                #expect(change["event"] == "rethink.change")
                #expect(change["cluster"] == "r-a")
                #expect(change["old_val"]?["name"] == "bob")
                #expect(change["new_val"]?["name"] == "bea")

                let missing = try await callFailing(
                    client, "m", ["op": "rethink.query", "cluster": "r-a", "query": ["db": "nope", "table": "t", "count": true]])
                #expect(missing["code"] == "rethink_schema_missing")

                let status = try await call(client, "s1", ["op": "rethink.status", "cluster": "r-a"])
                #expect(status["feeds_active"] == 1)
                #expect(!status.jsonString.contains(Self.password))

                _ = try await call(client, "x", ["op": "cluster.unregister", "cluster": "r-a"])
                let final = try await nextEvent(client, sub: sub)
                #expect(final["type"] == "end")
                try await eventually("server side connections closed") { await sim.openConnections == 0 }
                #expect(ProcessResources.tcpConnections(toPort: endpoint.port) == 0)
                let resources = await host.status().resources
                #expect(resources.supervisedTasks == 0, "\(resources)")
            }
        }
        #expect(!logs.text.contains(Self.password), "the RethinkDB password reached the logs")
    }

    @Test func discoveryThroughTheClustersKubernetesService() async throws {
        try await RethinkSim.withRunning(options: Self.simOptions()) { _, rethinkEndpoint in
            try await KubeSim.withRunning { kube, kubeEndpoint in
                _ = try await kube.create(.namespaces, namespace: "", ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "db"]])
                _ = try await kube.create(
                    .services, namespace: "db",
                    [
                        "apiVersion": "v1", "kind": "Service", "metadata": ["name": "rethinkdb", "namespace": "db"],
                        "spec": [
                            "clusterIP": .string(rethinkEndpoint.host),
                            "ports": [["name": "driver", "port": .int(Int64(rethinkEndpoint.port))], ["name": "admin", "port": 8080]],
                        ],
                    ])
                try await withHostOnSocket { _, client, directory in
                    let kubeconfig = directory + "/sim.kubeconfig"
                    try kube.writeKubeconfig(to: kubeconfig, endpoint: kubeEndpoint)
                    _ = try await call(
                        client, "r",
                        [
                            "op": "cluster.register", "cluster": "r-k", "kubeconfig": .string(kubeconfig),
                            "settings": ["rethinkdb.namespace": "db", "rethinkdb.user": "app", "rethinkdb.password": .string(Self.password)],
                        ])
                    let warm = try await call(client, "w", ["op": "rethink.warmup", "cluster": "r-k"])
                    #expect(warm["address"] == .string("\(rethinkEndpoint.host):\(rethinkEndpoint.port)"))
                    #expect(warm["address_source"] == "kubernetes-service")
                    let none = try await callFailing(client, "n", ["op": "rethink.warmup", "cluster": "r-none"])
                    #expect(none["code"] == "cluster_not_found")
                    _ = try await call(client, "r2", ["op": "cluster.register", "cluster": "r-bare"])
                    let bare = try await callFailing(client, "b", ["op": "rethink.warmup", "cluster": "r-bare"])
                    #expect(bare["code"] == "rethink_not_configured")
                }
            }
        }
    }

    @Test func wrongPasswordAndUnreachableAreClassified() async throws {
        try await RethinkSim.withRunning(options: Self.simOptions()) { _, endpoint in
            try await withHostOnSocket { _, client, _ in
                _ = try await call(
                    client, "r",
                    [
                        "op": "cluster.register", "cluster": "r-w",
                        "settings": [
                            "rethinkdb.address": .string("\(endpoint.host):\(endpoint.port)"), "rethinkdb.user": "app", "rethinkdb.password": "wrong",
                            // The SCRAM exchange must finish (and fail on the password) even under ThreadSanitizer on 2 cores.
                            "rethinkdb.connect_timeout_seconds": 60,
                        ],
                    ])
                let auth = try await callFailing(client, "w", ["op": "rethink.warmup", "cluster": "r-w"])
                #expect(auth["code"] == "rethink_auth_failed")
                #expect(auth["transient"] == false)
                // Fixing the password in the settings rebuilds the connector.
                _ = try await call(client, "s", ["op": "settings.set", "cluster": "r-w", "settings": ["rethinkdb.password": .string(Self.password)]])
                _ = try await call(client, "w2", ["op": "rethink.warmup", "cluster": "r-w"])
                // A port nobody listens on.
                _ = try await call(client, "s2", ["op": "settings.set", "cluster": "r-w", "settings": ["rethinkdb.address": "127.0.0.1:1"]])
                _ = try await call(client, "s3", ["op": "settings.set", "cluster": "r-w", "settings": ["rethinkdb.pool_size": 2]])
                let unreachable = try await callFailing(client, "w3", ["op": "rethink.warmup", "cluster": "r-w"])
                #expect(unreachable["code"] == "rethink_unreachable")
                #expect(unreachable["transient"] == true)
            }
        }
    }
}
