import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// `k8s.*` ops over a real control socket against KubeSim over real TLS.
@Suite("k8s ops over the control socket")
struct KubeOpsTests {
    static func pod(_ name: String) -> JSONValue {
        [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": .string(name), "namespace": "default"],
            "spec": ["containers": [["name": "app", "image": "nginx"]]],
        ]
    }

    static func names(_ items: JSONValue?) -> [String] {
        guard case .array(let items)? = items else { return [] }
        return items.compactMap { $0["metadata"]?["name"]?.stringValue }
    }

    @Test func listGetWatchAndFinalEventOnUnregister() async throws {
        var options = KubeSimOptions()
        options.seedPods = 3
        try await KubeSim.withRunning(options: options) { sim, endpoint in
            try await withHostOnSocket { host, client, directory in
                let kubeconfig = directory + "/sim.kubeconfig"
                try sim.writeKubeconfig(to: kubeconfig, endpoint: endpoint)
                let registered = try await call(client, "r", ["op": "cluster.register", "cluster": "sim-a", "kubeconfig": .string(kubeconfig)])
                #expect(registered["state"] == "ready")

                let listed = try await call(client, "l", ["op": "k8s.list", "cluster": "sim-a", "resource": "pods", "namespace": "default"])
                #expect(listed["source"] == "api")
                #expect(Self.names(listed["items"]).count == 3)
                let first = try #require(Self.names(listed["items"]).first)
                let got = try await call(
                    client, "g", ["op": "k8s.get", "cluster": "sim-a", "resource": "pods", "namespace": "default", "name": .string(first)])
                #expect(got["object"]?["metadata"]?["name"]?.stringValue == first)
                let missing = try await callFailing(
                    client, "m", ["op": "k8s.get", "cluster": "sim-a", "resource": "pods", "namespace": "default", "name": "nope"])
                #expect(missing["code"] == "k8s_not_found")

                let watch = try await call(client, "w", ["op": "k8s.watch", "cluster": "sim-a", "resource": "pods", "namespace": "default"])
                let sub = try #require(watch["sub"]?.stringValue)
                var initial: [String] = []
                while true {
                    let event = try await nextEvent(client, sub: sub)
                    #expect(event["event"] == "k8s.watch")
                    #expect(event["cluster"] == "sim-a")
                    if event["type"] == "SYNCED" { break }
                    #expect(event["type"] == "ADDED")
                    initial.append(event["object"]?["metadata"]?["name"]?.stringValue ?? "")
                }
                #expect(initial.sorted() == Self.names(listed["items"]).sorted())

                _ = try await sim.create(.pods, namespace: "default", Self.pod("watched"))
                let added = try await nextEvent(client, sub: sub)
                #expect(added["type"] == "ADDED")
                #expect(added["object"]?["metadata"]?["name"] == "watched")
                _ = try await sim.delete(.pods, namespace: "default", name: "watched")
                let deleted = try await nextEvent(client, sub: sub)
                #expect(deleted["type"] == "DELETED")
                #expect(deleted["object"]?["metadata"]?["name"] == "watched")

                // The cache is synced now: k8s.list serves from it.
                let cached = try await call(client, "c", ["op": "k8s.list", "cluster": "sim-a", "resource": "pods", "namespace": "default"])
                #expect(cached["source"] == "cache")
                #expect(Self.names(cached["items"]).sorted() == Self.names(listed["items"]).sorted())

                let status = try await call(client, "s", ["op": "cluster.status", "cluster": "sim-a"])
                guard case .array(let children)? = status["children"] else { throw HostError(.internalError, "no children") }
                let kube = try #require(children.first { $0["id"] == "kube" })
                #expect(kube["details"]?["configured"] == true)
                guard case .array(let informers)? = kube["details"]?["informers"] else { throw HostError(.internalError, "no informers") }
                #expect(informers.count == 1)
                #expect(informers.first?["synced"] == true)

                #expect(ProcessResources.tcpConnections(toPort: endpoint.port) >= 1, "the informer's watch is open")
                let unregistered = try await call(client, "u", ["op": "cluster.unregister", "cluster": "sim-a"])
                #expect(unregistered["state"] == "stopped")
                let final = try await nextEvent(client, sub: sub)
                #expect(final["type"] == "END")
                #expect(final["reason"]?["code"] == "cluster_stopping")
                // No connection to the API server survives the cluster (checked from the client's side).
                try await eventually("the cluster's API connections closed") { ProcessResources.tcpConnections(toPort: endpoint.port) == 0 }
                let resources = await host.status().resources
                #expect(resources.supervisedTasks == 0 && resources.openDatabases == 0, "\(resources)")
            }
        }
    }

    @Test func unwatchEndsOnlyThatSubscriptionAndIsScopedToTheConnection() async throws {
        try await KubeSim.withRunning { sim, endpoint in
            try await withHostOnSocket { _, client, directory in
                let kubeconfig = directory + "/sim.kubeconfig"
                try sim.writeKubeconfig(to: kubeconfig, endpoint: endpoint)
                _ = try await call(client, "r", ["op": "cluster.register", "cluster": "sim-b", "kubeconfig": .string(kubeconfig)])
                let one = try #require(try await call(client, "w1", ["op": "k8s.watch", "cluster": "sim-b", "resource": "configmaps"])["sub"]?.stringValue)
                let two = try #require(
                    try await call(client, "w2", ["op": "k8s.watch", "cluster": "sim-b", "resource": "configmaps", "initial": false])["sub"]?.stringValue)
                #expect(one != two)
                let ended = try await call(client, "x", ["op": "k8s.unwatch", "sub": .string(one)])
                #expect(ended["ended"] == true)
                let again = try await callFailing(client, "y", ["op": "k8s.unwatch", "sub": .string(one)])
                #expect(again["code"] == "subscription_not_found")
                // The other subscription still delivers.
                _ = try await sim.create(
                    .configmaps, namespace: "default",
                    ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "after-unwatch", "namespace": "default"], "data": ["k": "v"]])
                var seen: JSONValue
                repeat {
                    seen = try await nextEvent(client, sub: two)
                } while seen["type"] == "SYNCED"
                #expect(seen["object"]?["metadata"]?["name"] == "after-unwatch")
            }
        }
    }

    @Test func clusterWithoutKubeconfigAndBadInput() async throws {
        try await withHostOnSocket { _, client, _ in
            _ = try await call(client, "r", ["op": "cluster.register", "cluster": "bare"])
            let noConfig = try await callFailing(client, "l", ["op": "k8s.list", "cluster": "bare", "resource": "pods"])
            #expect(noConfig["code"] == "kubeconfig_invalid")
            let badResource = try await callFailing(client, "b", ["op": "k8s.list", "cluster": "bare", "resource": "no/such/thing/here"])
            #expect(badResource["code"] == "invalid_field")
            let badSource = try await callFailing(client, "s", ["op": "k8s.list", "cluster": "bare", "resource": "pods", "source": "disk"])
            #expect(badSource["code"] == "invalid_field")
        }
    }
}
