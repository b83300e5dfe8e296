import BenchSupport
import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetRethink
import GuildNetRuntime
import GuildNetSimulators
import Logging

/// `hostapp-rethink-bench`: RethinkDB figures against in-process RethinkSims, with the host runtime
/// embedded and driven over its real control socket. Prints one JSON object; see docs/performance.md.
///
///     hostapp-rethink-bench [--seconds 3] [--feed-events 20000] [--clusters 10] [--feeds-per-cluster 10]
@main
struct RethinkBench {
    struct Options {
        var seconds = 3
        var feedEvents = 20_000
        var clusters = 10
        var feedsPerCluster = 10
        var probes = 300

        init(_ arguments: [String]) throws {
            let flags = try Bench.flags(arguments, allowed: ["--seconds", "--feed-events", "--clusters", "--feeds-per-cluster", "--probes"])
            seconds = try Bench.int(flags["--seconds"], "--seconds", default: seconds)
            feedEvents = try Bench.int(flags["--feed-events"], "--feed-events", default: feedEvents)
            clusters = try Bench.int(flags["--clusters"], "--clusters", default: clusters)
            feedsPerCluster = try Bench.int(flags["--feeds-per-cluster"], "--feeds-per-cluster", default: feedsPerCluster)
            probes = try Bench.int(flags["--probes"], "--probes", default: probes)
        }
    }

    static let password = "bench-pw"

    static func main() async {
        do {
            let options = try Options(Array(CommandLine.arguments.dropFirst()))
            print(try await run(options).jsonString)
        } catch {
            FileHandle.standardError.write(Data("hostapp-rethink-bench: \(error)\n".utf8))
            exit(1)
        }
    }

    static func simOptions() -> RethinkSimOptions {
        var options = RethinkSimOptions()
        options.users = ["admin": "", "bench": password]
        return options
    }

    static func run(_ options: Options) async throws -> JSONValue {
        var result: [String: JSONValue] = ["machine_cores": .int(Int64(ProcessInfo.processInfo.activeProcessorCount))]
        result["query_round_trips"] = try await queryRoundTrips(seconds: options.seconds)
        result["control_protocol"] = try await withEmbeddedHost { host, socket in
            var figures: [String: JSONValue] = [:]
            figures["changefeed_to_control_client"] = try await feedToControlClient(socket: socket, events: options.feedEvents)
            figures["feeds_across_clusters"] = try await feedsAcrossClusters(
                socket: socket, clusters: options.clusters, feedsPerCluster: options.feedsPerCluster, seconds: options.seconds)
            figures["isolation"] = try await isolation(socket: socket, probes: options.probes)
            return .object(figures)
        }
        return .object(result)
    }

    // MARK: 1. Query round trips on one connection

    static func queryRoundTrips(seconds: Int) async throws -> JSONValue {
        try await RethinkSim.withRunning(options: simOptions()) { sim, endpoint in
            try await sim.createTable("kv", database: "test")
            try await sim.insert((0..<100).map { ["id": .int(Int64($0)), "v": "x"] }, table: "kv", database: "test")
            let connection = try await RethinkConnection.connect(
                to: RethinkAddress(host: endpoint.host, port: endpoint.port), user: "bench", password: password)
            let clock = ContinuousClock()
            var figures: [String: JSONValue] = [:]
            for inFlight in [1, 32] {
                let deadline = clock.now.advanced(by: .seconds(seconds))
                let started = clock.now
                let counts = try await withThrowingTaskGroup(of: Int.self) { group in
                    for worker in 0..<inFlight {
                        group.addTask {
                            var done = 0
                            while clock.now < deadline {
                                _ = try await connection.run(ReQL.table("kv").get(.int(Int64((done + worker) % 100))))
                                done += 1
                            }
                            return done
                        }
                    }
                    return try await group.reduce(0, +)
                }
                let elapsed = started.duration(to: clock.now).seconds
                figures["in_flight_\(inFlight)_per_second"] = .double((Double(counts) / elapsed).rounded())
            }
            await connection.close()
            return .object(figures)
        }
    }

    // MARK: Embedded host

    static func withEmbeddedHost<T: Sendable>(_ body: @Sendable (HostActor, String) async throws -> T) async throws -> T {
        let directory = "/tmp/gnrb-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let host = HostActor(configuration: HostConfiguration(stateDirectory: directory + "/state", logger: logger))
        let socket = directory + "/c.sock"
        let dispatcher = ControlDispatcher(host: host, logger: logger, requestShutdown: {})
        let server = ControlSocketServer(path: socket, configuration: .init(), handler: dispatcher, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await host.run() }
            group.addTask { try await server.run() }
            defer {
                server.shutdown()
                host.beginShutdown()
            }
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: .seconds(10))
            while true {
                if let probe = try? await ControlClient.connect(path: socket) {
                    await probe.close()
                    break
                }
                guard clock.now < deadline else { throw BenchError("control socket not listening") }
                try await Task.sleep(for: .milliseconds(10))
            }
            return try await body(host, socket)
        }
    }

    static func call(_ client: ControlClient, _ fields: [String: JSONValue], id: String) async throws -> JSONValue {
        var request = fields
        request["id"] = .string(id)
        let reply = try JSONParser.parse(try await client.request(JSONValue.object(request).jsonString, id: id, timeout: .seconds(60)))
        guard reply["ok"] == .bool(true), let result = reply["result"] else { throw BenchError("request failed: \(reply.jsonString)") }
        return result
    }

    static func register(_ client: ControlClient, cluster: String, endpoint: RethinkSimEndpoint) async throws {
        _ = try await call(
            client,
            [
                "op": "cluster.register", "cluster": .string(cluster),
                "settings": [
                    "rethinkdb.address": .string("\(endpoint.host):\(endpoint.port)"), "rethinkdb.user": "bench",
                    "rethinkdb.password": .string(password), "rethinkdb.max_feeds": 64,
                ],
            ], id: "reg-\(cluster)")
    }

    static func subscribe(_ client: ControlClient, cluster: String, table: String, id: String) async throws -> String {
        let reply = try await call(
            client, ["op": "rethink.changes", "cluster": .string(cluster), "query": ["table": .string(table), "changes": true], "buffer": 100_000], id: id)
        guard let sub = reply["sub"]?.stringValue else { throw BenchError("no sub in \(reply.jsonString)") }
        return sub
    }

    /// Reads event lines until `count` change events arrived; returns per-event latency from the `t` field.
    static func readChanges(_ client: ControlClient, count: Int) async throws -> [Duration] {
        var latencies: [Duration] = []
        latencies.reserveCapacity(count)
        while latencies.count < count {
            guard let line = try await client.receive() else { throw BenchError("connection closed") }
            let event = try JSONParser.parse(line)
            guard event["type"] == "change", let sent = event["new_val"]?["t"]?.intValue else { continue }
            latencies.append(.nanoseconds(Bench.nowNanos() - sent))
        }
        return latencies
    }

    // MARK: 2. Changefeed events delivered to a control client

    static func feedToControlClient(socket: String, events: Int) async throws -> JSONValue {
        try await RethinkSim.withRunning(options: simOptions()) { sim, endpoint in
            try await sim.createTable("events", database: "test")
            let client = try await ControlClient.connect(path: socket)
            try await register(client, cluster: "feed-1", endpoint: endpoint)
            _ = try await subscribe(client, cluster: "feed-1", table: "events", id: "sub")
            try await waitForFeeds(sim, 1)
            let clock = ContinuousClock()
            let started = clock.now
            async let received = readChanges(client, count: events)
            let batch = 500
            for start in stride(from: 0, to: events, by: batch) {
                let now = Bench.nowNanos()
                try await sim.insert((start..<min(events, start + batch)).map { ["id": .int(Int64($0)), "t": .int(now)] }, table: "events", database: "test")
            }
            let latencies = try await received
            let elapsed = started.duration(to: clock.now).seconds
            _ = try await call(client, ["op": "cluster.unregister", "cluster": "feed-1"], id: "unreg")
            await client.close()
            return ["events": .int(Int64(events)), "events_per_second": .double((Double(events) / elapsed).rounded()), "latency_ms": Bench.percentiles(latencies)]
        }
    }

    static func waitForFeeds(_ sim: RethinkSim, _ count: Int) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(30))
        while await sim.activeChangefeeds < count {
            guard clock.now < deadline else { throw BenchError("feeds did not open") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    // MARK: 3. 100 concurrent feeds across 10 clusters

    static func feedsAcrossClusters(socket: String, clusters: Int, feedsPerCluster: Int, seconds: Int) async throws -> JSONValue {
        let sims = try await (0..<clusters).asyncMap { _ in try await RethinkSim(options: simOptions()) }
        return try await withThrowingTaskGroup(of: JSONValue?.self) { group in
            for sim in sims { group.addTask { try await sim.run(); return nil } }
            defer { group.cancelAll() }
            var clients: [ControlClient] = []
            for (index, sim) in sims.enumerated() {
                try await sim.createTable("t", database: "test")
                let client = try await ControlClient.connect(path: socket)
                try await register(client, cluster: "multi-\(index)", endpoint: try await sim.endpoint())
                for feed in 0..<feedsPerCluster { _ = try await subscribe(client, cluster: "multi-\(index)", table: "t", id: "s\(feed)") }
                try await waitForFeeds(sim, feedsPerCluster)
                clients.append(client)
            }
            let perCluster = 2_000
            let clock = ContinuousClock()
            let started = clock.now
            let latencies = try await withThrowingTaskGroup(of: [Duration].self) { readers in
                for client in clients { readers.addTask { try await readChanges(client, count: perCluster * feedsPerCluster) } }
                for (index, sim) in sims.enumerated() {
                    readers.addTask {
                        for start in stride(from: 0, to: perCluster, by: 100) {
                            let now = Bench.nowNanos()
                            try await sim.insert((start..<start + 100).map { ["id": .int(Int64($0 + index * 1_000_000)), "t": .int(now)] }, table: "t", database: "test")
                        }
                        return []
                    }
                }
                return try await readers.reduce([], +)
            }
            let elapsed = started.duration(to: clock.now).seconds
            for (index, client) in clients.enumerated() {
                _ = try await call(client, ["op": "cluster.unregister", "cluster": .string("multi-\(index)")], id: "u")
                await client.close()
            }
            for sim in sims { await sim.stop() }
            return [
                "clusters": .int(Int64(clusters)), "feeds": .int(Int64(clusters * feedsPerCluster)),
                "events_delivered": .int(Int64(latencies.count)), "events_per_second": .double((Double(latencies.count) / elapsed).rounded()),
                "latency_ms": Bench.percentiles(latencies),
            ]
        }
    }

    // MARK: 4. Isolation: a flood on A vs B's event latency

    static func isolation(socket: String, probes: Int) async throws -> JSONValue {
        try await RethinkSim.withRunning(options: simOptions()) { simA, endpointA in
            try await RethinkSim.withRunning(options: simOptions()) { simB, endpointB in
                try await simA.createTable("flood", database: "test")
                try await simB.createTable("probe", database: "test")
                let clientA = try await ControlClient.connect(path: socket)
                let clientB = try await ControlClient.connect(path: socket)
                try await register(clientA, cluster: "iso-a", endpoint: endpointA)
                try await register(clientB, cluster: "iso-b", endpoint: endpointB)
                _ = try await subscribe(clientA, cluster: "iso-a", table: "flood", id: "a")
                _ = try await subscribe(clientB, cluster: "iso-b", table: "probe", id: "b")
                try await waitForFeeds(simA, 1)
                try await waitForFeeds(simB, 1)

                func probeB(offset: Int) async throws -> [Duration] {
                    async let latencies = readChanges(clientB, count: probes)
                    for index in 0..<probes {
                        try await simB.insert([["id": .int(Int64(offset + index)), "t": .int(Bench.nowNanos())]], table: "probe", database: "test")
                        try await Task.sleep(for: .milliseconds(5))
                    }
                    return try await latencies
                }
                let quiet = try await probeB(offset: 0)
                // Flood A (writer + reader) while probing B.
                let flooded = try await withThrowingTaskGroup(of: Int.self) { group in
                    let stop = LockedValue(false)
                    group.addTask {
                        var written = 0
                        while !stop.withLock({ $0 }) {
                            let now = Bench.nowNanos()
                            try await simA.insert((0..<200).map { ["id": .int(Int64(written + $0)), "t": .int(now)] }, table: "flood", database: "test")
                            written += 200
                        }
                        return written
                    }
                    group.addTask {
                        var read = 0
                        while !stop.withLock({ $0 }), let _ = try await clientA.receive() { read += 1 }
                        return -read
                    }
                    let busy = try await probeB(offset: 1_000_000)
                    stop.withLock { $0 = true }
                    // Unblock A's reader: one more write produces one more event.
                    try await simA.insert([["id": -1, "t": 0]], table: "flood", database: "test")
                    var flooded = 0
                    var read = 0
                    for try await count in group { if count >= 0 { flooded = count } else { read = -count } }
                    return (busy, flooded, read)
                }
                let (busy, written, read) = flooded
                _ = try await call(clientB, ["op": "cluster.unregister", "cluster": "iso-b"], id: "ub")
                _ = try await call(clientA, ["op": "cluster.unregister", "cluster": "iso-a"], id: "ua")
                await clientA.close()
                await clientB.close()
                let quietP99 = percentile(quiet, 0.99)
                let busyP99 = percentile(busy, 0.99)
                return [
                    "b_latency_quiet_ms": Bench.percentiles(quiet),
                    "b_latency_during_a_flood_ms": Bench.percentiles(busy),
                    "b_p99_change_percent": .double(((busyP99 / max(quietP99, 1e-9) - 1) * 1000).rounded() / 10),
                    "a_flood_rows_written": .int(Int64(written)),
                    "a_flood_lines_read": .int(Int64(read)),
                ]
            }
        }
    }

    static func percentile(_ durations: [Duration], _ p: Double) -> Double {
        let sorted = durations.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))].seconds
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
