import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// The built `hostapp` binary against KubeSim and RethinkSim: one cluster watching pods and a
/// RethinkDB changefeed, then unregistered while both streams are open.
@Suite("hostapp with Kubernetes and RethinkDB")
struct SubsystemsEndToEndTests {
    static let rethinkPassword = "e2e-rethink-password"

    static func next(_ client: ControlClient, sub: String) async throws -> JSONValue {
        try await withDeadline(.seconds(20), "an event of \(sub)") {
            while let line = try await client.receive() {
                let value = try JSONParser.parse(line)
                if value["sub"] == .string(sub) { return value }
            }
            throw HostError(.io, "connection closed")
        }
    }

    static func call(_ client: ControlClient, _ id: String, _ fields: [String: JSONValue]) async throws -> JSONValue {
        var request = fields
        request["id"] = .string(id)
        let reply = try JSONParser.parse(try await client.request(JSONValue.object(request).jsonString, id: id, timeout: .seconds(30)))
        guard reply["ok"] == true, let result = reply["result"] else { throw HostError(.internalError, "\(id) failed: \(reply.jsonString)") }
        return result
    }

    @Test func watchAndChangefeedEndWithTheClusterAndLeaveNothingOpen() async throws {
        var rethinkOptions = RethinkSimOptions()
        rethinkOptions.users = ["admin": "", "app": Self.rethinkPassword]
        try await RethinkSim.withRunning(options: rethinkOptions) { rethink, rethinkEndpoint in
            try await rethink.createTable("jobs", database: "test")
            try await KubeSim.withRunning { kube, kubeEndpoint in
                let dir = TemporaryDirectory("e2e-sub")
                defer { dir.remove() }
                let kubeconfig = dir.path + "/sim.kubeconfig"
                try kube.writeKubeconfig(to: kubeconfig, endpoint: kubeEndpoint)
                let daemon = try HostappProcess(stateDirectory: dir.path + "/state", extra: ["--log-level", "trace"])
                defer { daemon.terminate() }
                _ = try await daemon.waitUntilReady()
                let client = try await daemon.client()
                // The first cycle also creates what lives for the process (NIO's event-loop threads with
                // their epoll descriptors); the second must end with no more descriptors than after the first.
                try await Self.cycle(
                    client, daemon: daemon, cluster: "e2e-warmup", kubeconfig: kubeconfig, kube: kube, kubeEndpoint: kubeEndpoint, rethink: rethink,
                    rethinkEndpoint: rethinkEndpoint)
                let baselineFDs = ProcessResources.openFileCount(pid: daemon.pid)
                try await Self.cycle(
                    client, daemon: daemon, cluster: "e2e", kubeconfig: kubeconfig, kube: kube, kubeEndpoint: kubeEndpoint, rethink: rethink,
                    rethinkEndpoint: rethinkEndpoint)
                try await eventually("the daemon's descriptors back to the baseline") {
                    ProcessResources.openFileCount(pid: daemon.pid) <= baselineFDs
                }
                await client.close()

                let logs = daemon.logLines.joined(separator: "\n")
                #expect(!logs.isEmpty)
                #expect(!logs.contains(Self.rethinkPassword), "the RethinkDB password reached the daemon's logs")
                #expect(!logs.contains(kube.options.token), "the API token reached the daemon's logs")
            }
        }
    }

    /// Registers `cluster`, opens a pod watch and a changefeed, sees one event on each, unregisters
    /// with both open, and checks both end and every connection to the simulators closes.
    static func cycle(
        _ client: ControlClient, daemon: HostappProcess, cluster: String, kubeconfig: String, kube: KubeSim, kubeEndpoint: KubeSimEndpoint,
        rethink: RethinkSim, rethinkEndpoint: RethinkSimEndpoint
    ) async throws {

        _ = try await Self.call(
            client, "r",
            [
                "op": "cluster.register", "cluster": .string(cluster), "kubeconfig": .string(kubeconfig),
                "settings": [
                    "rethinkdb.address": .string("\(rethinkEndpoint.host):\(rethinkEndpoint.port)"), "rethinkdb.user": "app",
                    "rethinkdb.password": .string(Self.rethinkPassword),
                ],
            ])
        let watch = try #require(
            try await Self.call(client, "w", ["op": "k8s.watch", "cluster": .string(cluster), "resource": "pods", "namespace": "default"])["sub"]?.stringValue)
        let feed = try #require(
            try await Self.call(client, "f", ["op": "rethink.changes", "cluster": .string(cluster), "query": ["table": "jobs", "changes": true]])["sub"]?
                .stringValue)
        while try await Self.next(client, sub: watch)["type"] != "SYNCED" {}  // the initial snapshot (pods of earlier cycles)
        try await eventually("the feed is open") { await rethink.activeChangefeeds == 1 }

        _ = try await kube.create(
            .pods, namespace: "default",
            [
                "apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(cluster + "-pod"), "namespace": "default"],
                "spec": ["containers": [["name": "c", "image": "i"]]],
            ])
        let added = try await Self.next(client, sub: watch)
        #expect(added["type"] == "ADDED")
        #expect(added["object"]?["metadata"]?["name"] == .string(cluster + "-pod"))
        try await rethink.insert([["id": .string(cluster + "-job"), "state": "queued"]], table: "jobs", database: "test")
        let change = try await Self.next(client, sub: feed)
        #expect(change["event"] == "rethink.change")
        #expect(change["new_val"]?["id"] == .string(cluster + "-job"))
        #expect(change["old_val"] == .null)

        #expect(ProcessResources.tcpConnections(toPort: kubeEndpoint.port, pid: daemon.pid) >= 1)
        #expect(ProcessResources.tcpConnections(toPort: rethinkEndpoint.port, pid: daemon.pid) >= 1)
        _ = try await Self.call(client, "u", ["op": "cluster.unregister", "cluster": .string(cluster)])
        // Both streams end, in either order.
        let ends = try await withDeadline(.seconds(20), "both final events") {
            var ends: [String: JSONValue] = [:]
            while ends.count < 2, let line = try await client.receive() {
                let event = try JSONParser.parse(line)
                if let sub = event["sub"]?.stringValue, event["type"] == "END" || event["type"] == "end" { ends[sub] = event }
            }
            return ends
        }
        #expect(ends[watch]?["type"] == "END")
        #expect(ends[watch]?["reason"]?["code"] == "cluster_stopping")
        #expect(ends[feed]?["type"] == "end")

        try await eventually("the daemon's API and RethinkDB connections closed") {
            ProcessResources.tcpConnections(toPort: kubeEndpoint.port, pid: daemon.pid) == 0
                && ProcessResources.tcpConnections(toPort: rethinkEndpoint.port, pid: daemon.pid) == 0
        }
        let status = try await Self.call(client, "h", ["op": "host.status"])
        #expect(status["resources"]?["supervised_tasks"] == 0)
    }
}
