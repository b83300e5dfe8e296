import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetSimulators
import NIOCore
import NIOPosix

/// One simulated cluster of `hostapp demo`: its KubeSim and RethinkSim, its registration, and its
/// workload (a pod watch, a changefeed whose rows go into the cluster's DB, a port-forward with
/// echo traffic, and writers that keep the watch and the feed busy).
struct DemoCluster: Sendable {
    let name: String
    let kube: KubeSim
    let kubeEndpoint: KubeSimEndpoint
    let rethink: RethinkSim
    let rethinkEndpoint: RethinkSimEndpoint
    let counters = DemoCounters()

    static let table = "demo"
    static let database = "test"
    static let rethinkUser = "demo"

    /// Registers the cluster with the daemon (kubeconfig and RethinkDB credentials; the daemon keeps
    /// them in 0600 files) and prepares the table the writers fill.
    func register(_ control: DemoControl, workDirectory: String, password: String) async throws {
        try await rethink.createTable(Self.table, database: Self.database)
        try await rethink.setUser(Self.rethinkUser, password: password)
        let kubeconfig = workDirectory + "/\(name).kubeconfig"
        try kube.writeKubeconfig(to: kubeconfig, endpoint: kubeEndpoint)
        _ = try await control.call([
            "op": "cluster.register", "cluster": .string(name), "kubeconfig": .string(kubeconfig),
            "settings": [
                "rethinkdb.address": .string("\(rethinkEndpoint.host):\(rethinkEndpoint.port)"), "rethinkdb.user": .string(Self.rethinkUser),
                "rethinkdb.password": .string(password),
            ],
        ])
    }

    /// The streams of this cluster, on their own connection: a pod watch and a changefeed.
    struct Streams: Sendable {
        let client: ControlClient
        let watch: String
        let feed: String
    }

    func openStreams(socket: String) async throws -> Streams {
        let client = try await ControlClient.connect(path: socket)
        let watch = try await DemoControl.call(
            client, ["op": "k8s.watch", "cluster": .string(name), "resource": "pods", "namespace": "default"], id: "watch")
        let feed = try await DemoControl.call(
            client, ["op": "rethink.changes", "cluster": .string(name), "query": ["table": .string(Self.table), "changes": true]], id: "feed")
        guard let watchID = watch["sub"]?.stringValue, let feedID = feed["sub"]?.stringValue else {
            throw HostError(.internalError, "k8s.watch or rethink.changes replied without a subscription id")
        }
        return Streams(client: client, watch: watchID, feed: feedID)
    }

    /// Starts a port-forward to the first pod's echo port (8080); returns the local port.
    func startForward(_ control: DemoControl) async throws -> Int {
        let pods = try await kube.list(.pods, namespace: "default")
        guard let pod = pods["items"]?.arrayValue?.first?["metadata"]?["name"]?.stringValue else {
            throw HostError(.internalError, "KubeSim of \(name) has no pod to forward to")
        }
        let forward = try await control.call(["op": "forward.start", "cluster": .string(name), "pod": .string(pod), "remote_port": 8080])
        guard let port = forward["local_port"]?.intValue else { throw HostError(.internalError, "forward.start replied without local_port") }
        return Int(port)
    }

    // MARK: Workload

    /// Reads the streams until the connection closes: counts watch and feed events, keeps the set
    /// of pods, and stores every changefeed row in the cluster's DB (`rows/<id>`).
    func readStreams(_ streams: Streams, control: DemoControl) async {
        do {
            while let line = try await streams.client.receive() {
                let event = try JSONParser.parse(line)
                guard let sub = event["sub"]?.stringValue else { continue }
                if sub == streams.watch {
                    let type = event["type"]?.stringValue ?? ""
                    let pod = event["object"]?["metadata"]?["name"]?.stringValue
                    counters.update { values in
                        switch type {
                        case "ADDED", "MODIFIED":
                            values.watchEvents += 1
                            if let pod { values.pods.insert(pod) }
                        case "DELETED":
                            values.watchEvents += 1
                            if let pod { values.pods.remove(pod) }
                        default:
                            break
                        }
                    }
                } else if sub == streams.feed, let row = event["new_val"], let id = row["id"]?.stringValue {
                    counters.update { $0.feedEvents += 1 }
                    _ = try await control.call(["op": "db.put", "cluster": .string(name), "key": .string("rows/" + id), "value": row])
                }
            }
        } catch {
            if !Task.isCancelled { counters.failed(error) }
        }
    }

    /// Inserts `rowsPerSecond` rows a second into the cluster's table (the changefeed's source).
    func writeRows(rowsPerSecond: Int) async {
        let pause = Duration.milliseconds(1000 / max(1, rowsPerSecond))
        var index = 0
        while !Task.isCancelled {
            index += 1
            do {
                try await rethink.insert(
                    [["id": .string(String(format: "row-%06d", index)), "cluster": .string(name), "n": .int(Int64(index))]],
                    table: Self.table, database: Self.database)
                counters.update { $0.rowsWritten += 1 }
                try await Task.sleep(for: pause)
            } catch {
                if !Task.isCancelled { counters.failed(error) }
                return
            }
        }
    }

    /// Relabels a pod every second, so the pod watch sees a steady stream of MODIFIED events.
    func touchPods() async {
        var tick = 0
        while !Task.isCancelled {
            tick += 1
            do {
                let pods = try await kube.list(.pods, namespace: "default")
                let names = (pods["items"]?.arrayValue ?? []).compactMap { $0["metadata"]?["name"]?.stringValue }
                if !names.isEmpty {
                    _ = try await kube.patch(
                        .pods, name: names[tick % names.count], ["metadata": ["labels": ["demo-tick": .string(String(tick))]]])
                }
                try await Task.sleep(for: .seconds(1))
            } catch {
                if !Task.isCancelled { counters.failed(error) }
                return
            }
        }
    }

    /// Sends 16 KiB through the port-forward ten times a second and reads the echo back.
    func forwardTraffic(port: Int) async {
        let chunk = [UInt8](repeating: UInt8(ascii: "g"), count: 16 << 10)
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
            try await channel.executeThenClose { inbound, outbound in
                var replies = inbound.makeAsyncIterator()
                while !Task.isCancelled {
                    try await outbound.write(ByteBuffer(bytes: chunk))
                    var echoed = 0
                    while echoed < chunk.count {
                        guard let buffer = try await replies.next() else { return }
                        echoed += buffer.readableBytes
                    }
                    counters.update { $0.forwardBytes += chunk.count + echoed }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        } catch {
            if !Task.isCancelled { counters.failed(error) }
        }
    }
}
