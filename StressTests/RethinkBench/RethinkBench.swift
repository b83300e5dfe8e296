import BenchSupport
import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetRethink
import GuildNetSimulators
import Logging

/// `hostapp-rethink-bench`: RethinkDB figures. Query round trips use the client library against an
/// in-process RethinkSim; everything else drives a real `hostapp serve` process over its control
/// socket, with each cluster's RethinkDB a `hostapp sim rethink` process and the writers in this
/// process. Prints one JSON object; see docs/performance.md.
///
///     hostapp-rethink-bench [--hostapp .build/release/hostapp] [--only query,feed,multi,isolation]
///                           [--seconds 3] [--feed-events 20000] [--clusters 10] [--feeds-per-cluster 10]
///                           [--rows-per-cluster 1000] [--probes 2000] [--rounds 5] [--flood-rate 0]
///                           [--flood-priority idle|nice|normal] [--a-budget default|N] [--a-batch-rows default|N]
///                           [--sim-batch-size 1000]
///
/// The throughput sections (`feed`, `multi`) register their clusters with an unlimited changefeed
/// event budget (`rethinkdb.feed_events_per_second` 0), to measure the daemon's own ceiling; the
/// isolation section keeps the daemon's default budget unless `--a-budget` sets cluster A's.
@main
struct RethinkBench {
    struct Options {
        var seconds = 3
        var feedEvents = 20_000
        var clusters = 10
        var feedsPerCluster = 10
        var probes = 2_000
        /// Quiet and flooded phases alternate this many times (the probes are split between them).
        var rounds = 5
        /// Cluster A's `rethinkdb.feed_events_per_second` in the isolation run; nil keeps the default.
        var aBudget: Int?
        /// Cluster A's `rethinkdb.feed_batch_rows` in the isolation run; nil keeps the default.
        var aBatchRows: Int?
        var sections: Set<String> = ["query", "feed", "multi", "isolation"]
        /// Rows per response of the simulated RethinkDB servers (`hostapp sim rethink --batch-size`).
        var simBatchSize = 1_000
        var rowsPerCluster = 1_000
        /// Rows per second written to cluster A's table in the isolation run; 0 writes as fast as possible.
        var floodRate = 0
        /// The CPU priority of A's RethinkDB and the flood worker, which stand for other machines:
        /// `idle` (SCHED_IDLE: they run only on CPU time nobody else wants), `nice` (`nice -n 19`) or `normal`.
        var floodPriority = FloodPriority.idle
        var hostapp = ".build/release/hostapp"

        init(_ arguments: [String]) throws {
            let flags = try Bench.flags(
                arguments,
                allowed: [
                    "--seconds", "--feed-events", "--clusters", "--feeds-per-cluster", "--probes", "--rows-per-cluster", "--hostapp", "--flood-rate",
                    "--flood-priority",
                    "--rounds", "--a-budget", "--only", "--sim-batch-size", "--a-batch-rows",
                ])
            if let rows = flags["--a-batch-rows"], rows != "default" {
                guard let value = Int(rows), value >= 1 else { throw BenchError("--a-batch-rows needs an integer ≥ 1 or default") }
                aBatchRows = value
            }
            simBatchSize = try Bench.int(flags["--sim-batch-size"], "--sim-batch-size", default: simBatchSize)
            if let only = flags["--only"] {
                let wanted = Set(only.split(separator: ",").map(String.init))
                guard !wanted.isEmpty, wanted.isSubset(of: sections) else {
                    throw BenchError("--only takes a comma-separated list of \(sections.sorted().joined(separator: ","))")
                }
                sections = wanted
            }
            if let budget = flags["--a-budget"], budget != "default" {
                guard let value = Int(budget), value >= 0 else { throw BenchError("--a-budget needs an integer ≥ 0 or default") }
                aBudget = value
            }
            rounds = max(1, try Bench.int(flags["--rounds"], "--rounds", default: rounds))
            if let priority = flags["--flood-priority"] {
                guard let value = FloodPriority(rawValue: priority) else { throw BenchError("--flood-priority takes idle, nice or normal") }
                floodPriority = value
            }
            if let rate = flags["--flood-rate"] {
                guard let value = Int(rate), value >= 0 else { throw BenchError("--flood-rate needs an integer ≥ 0") }
                floodRate = value
            }
            hostapp = flags["--hostapp"] ?? hostapp
            rowsPerCluster = try Bench.int(flags["--rows-per-cluster"], "--rows-per-cluster", default: rowsPerCluster)
            seconds = try Bench.int(flags["--seconds"], "--seconds", default: seconds)
            feedEvents = try Bench.int(flags["--feed-events"], "--feed-events", default: feedEvents)
            clusters = try Bench.int(flags["--clusters"], "--clusters", default: clusters)
            feedsPerCluster = try Bench.int(flags["--feeds-per-cluster"], "--feeds-per-cluster", default: feedsPerCluster)
            probes = try Bench.int(flags["--probes"], "--probes", default: probes)
        }
    }

    static let password = "bench-pw"

    enum FloodPriority: String {
        case idle, nice, normal

        /// `arguments` run at this priority: the executable and arguments to start.
        func command(_ executable: String, _ arguments: [String]) -> (String, [String]) {
            switch self {
            case .idle: ("/usr/bin/chrt", ["--idle", "0", executable] + arguments)
            case .nice: ("/usr/bin/nice", ["-n", "19", executable] + arguments)
            case .normal: (executable, arguments)
            }
        }
    }

    static func main() async {
        await Bench.runMain("hostapp-rethink-bench") {
            let arguments = Array(CommandLine.arguments.dropFirst())
            if arguments.first == "--flood-worker" {
                try await FloodWorker(Array(arguments.dropFirst())).run()
                return nil
            }
            return try await run(try Options(arguments))
        }
    }

    static func simOptions() -> RethinkSimOptions {
        var options = RethinkSimOptions()
        options.users = ["admin": "", "bench": password]
        return options
    }

    static func run(_ options: Options) async throws -> JSONValue {
        var result: [String: JSONValue] = ["machine_cores": .int(Int64(ProcessInfo.processInfo.activeProcessorCount))]
        if options.sections.contains("query") {
            result["query_round_trips"] = try await queryRoundTrips(seconds: options.seconds)
        }
        guard !options.sections.isDisjoint(with: ["feed", "multi", "isolation"]) else { return .object(result) }
        let hostapp = options.hostapp
        result["control_protocol"] = try await withDaemon(hostapp: hostapp) { socket in
            var figures: [String: JSONValue] = [:]
            if options.sections.contains("feed") {
                figures["changefeed_to_control_client"] = try await feedToControlClient(
                    hostapp: hostapp, socket: socket, events: options.feedEvents)
            }
            if options.sections.contains("multi") {
                figures["feeds_across_clusters"] = try await feedsAcrossClusters(
                    hostapp: hostapp, socket: socket, clusters: options.clusters, feedsPerCluster: options.feedsPerCluster,
                    rowsPerCluster: options.rowsPerCluster)
            }
            if options.sections.contains("isolation") {
                figures["isolation"] = try await isolation(hostapp: hostapp, socket: socket, options: options)
            }
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

    // MARK: The daemon and simulator processes

    /// Runs `body` against a real `hostapp serve` process (its control socket path is passed).
    static func withDaemon<T: Sendable>(hostapp: String, _ body: @Sendable (String) async throws -> T) async throws -> T {
        let directory = "/tmp/gnrb-\(getpid())"
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socket = directory + "/c.sock"
        let daemon = try BenchProcess(hostapp, ["serve", "--state-dir", directory + "/state", "--socket", socket, "--log-level", "error"])
        defer { daemon.terminate() }
        let probe = try await Bench.connectWhenReady(socket: socket, deadline: .seconds(30))
        await probe.close()
        return try await body(socket)
    }

    /// A RethinkSim process (`hostapp sim rethink`) and a writer connection to it from this process.
    struct SimProcess: Sendable {
        let process: BenchProcess
        let address: RethinkAddress
        let writer: RethinkConnection

        /// - Parameter priority: the simulator's CPU priority (a RethinkDB that
        ///   in production runs on another machine should not take the daemon's CPU).
        static func start(hostapp: String, priority: FloodPriority = .normal, batchSize: Int = 1_000) async throws -> SimProcess {
            let arguments = ["sim", "rethink", "--port", "0", "--user", "bench", "--password", password, "--batch-size", String(batchSize)]
            let (executable, command) = priority.command(hostapp, arguments)
            let process = try BenchProcess(executable, command)
            let text = try await process.waitForLine(prefix: "RethinkSim listening on ")
            let address = try RethinkAddress(parsing: text)
            let writer = try await RethinkConnection.connect(to: address, user: "bench", password: password)
            return SimProcess(process: process, address: address, writer: writer)
        }

        func createTable(_ name: String) async throws {
            _ = try await writer.run(ReQL.tableCreate(name))
        }

        func insert(_ table: String, _ documents: [JSONValue]) async throws {
            _ = try await writer.run(ReQL.table(table).insert(.array(documents)))
        }

        func stop() async {
            await writer.close()
            process.terminate()
        }
    }

    static func call(_ client: ControlClient, _ fields: [String: JSONValue], id: String) async throws -> JSONValue {
        var request = fields
        request["id"] = .string(id)
        let reply = try JSONParser.parse(try await client.request(JSONValue.object(request).jsonString, id: id, timeout: .seconds(60)))
        guard reply["ok"] == .bool(true), let result = reply["result"] else { throw BenchError("request failed: \(reply.jsonString)") }
        return result
    }

    /// Registers `cluster` with `sim` as its RethinkDB; `feedBudget` sets `rethinkdb.feed_events_per_second`
    /// (nil keeps the daemon's default).
    static func register(_ client: ControlClient, cluster: String, sim: SimProcess, feedBudget: Int?, feedBatchRows: Int? = nil) async throws {
        var settings: [String: JSONValue] = [
            "rethinkdb.address": .string(sim.address.description), "rethinkdb.user": "bench",
            "rethinkdb.password": .string(password), "rethinkdb.max_feeds": 64,
        ]
        if let feedBudget { settings["rethinkdb.feed_events_per_second"] = .int(Int64(feedBudget)) }
        if let feedBatchRows { settings["rethinkdb.feed_batch_rows"] = .int(Int64(feedBatchRows)) }
        _ = try await call(
            client, ["op": "cluster.register", "cluster": .string(cluster), "settings": .object(settings)], id: "reg-\(cluster)")
    }

    static func subscribe(_ client: ControlClient, cluster: String, table: String, id: String) async throws -> String {
        let reply = try await call(
            client, ["op": "rethink.changes", "cluster": .string(cluster), "query": ["table": .string(table), "changes": true], "buffer": 100_000],
            id: id)
        guard let sub = reply["sub"]?.stringValue else { throw BenchError("no sub in \(reply.jsonString)") }
        return sub
    }

    /// Waits until the cluster's connector reports `count` open feeds.
    static func waitForFeeds(_ client: ControlClient, cluster: String, _ count: Int) async throws {
        try await Bench.waitFor("the feeds of \(cluster) to open", timeout: .seconds(30), interval: .milliseconds(5)) {
            let status = try await call(client, ["op": "rethink.status", "cluster": .string(cluster)], id: "st-\(cluster)")
            return status["feeds_active"]?.intValue ?? 0 >= count
        }
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

    static func feedToControlClient(hostapp: String, socket: String, events: Int) async throws -> JSONValue {
        let sim = try await SimProcess.start(hostapp: hostapp)
        try await sim.createTable("events")
        let client = try await ControlClient.connect(path: socket)
        try await register(client, cluster: "feed-1", sim: sim, feedBudget: 0)
        _ = try await subscribe(client, cluster: "feed-1", table: "events", id: "sub")
        try await waitForFeeds(client, cluster: "feed-1", 1)
        let clock = ContinuousClock()
        let started = clock.now
        async let received = readChanges(client, count: events)
        for start in stride(from: 0, to: events, by: 500) {
            let now = Bench.nowNanos()
            try await sim.insert("events", (start..<min(events, start + 500)).map { ["id": .int(Int64($0)), "t": .int(now)] })
        }
        let latencies = try await received
        let elapsed = started.duration(to: clock.now).seconds
        _ = try await call(client, ["op": "cluster.unregister", "cluster": "feed-1"], id: "unreg")
        await client.close()
        await sim.stop()
        return ["events": .int(Int64(events)), "events_per_second": .double((Double(events) / elapsed).rounded()), "latency_ms": Bench.percentiles(latencies)]
    }

    // MARK: 3. 100 concurrent feeds across 10 clusters

    static func feedsAcrossClusters(hostapp: String, socket: String, clusters: Int, feedsPerCluster: Int, rowsPerCluster: Int) async throws -> JSONValue {
        var sims: [SimProcess] = []
        var clients: [ControlClient] = []
        for index in 0..<clusters {
            let sim = try await SimProcess.start(hostapp: hostapp)
            try await sim.createTable("t")
            let client = try await ControlClient.connect(path: socket)
            try await register(client, cluster: "multi-\(index)", sim: sim, feedBudget: 0)
            for feed in 0..<feedsPerCluster { _ = try await subscribe(client, cluster: "multi-\(index)", table: "t", id: "s\(feed)") }
            try await waitForFeeds(client, cluster: "multi-\(index)", feedsPerCluster)
            sims.append(sim)
            clients.append(client)
        }
        let clock = ContinuousClock()
        let started = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
            for client in clients { group.addTask { try await readChanges(client, count: rowsPerCluster * feedsPerCluster) } }
            for (index, sim) in sims.enumerated() {
                group.addTask {
                    for start in stride(from: 0, to: rowsPerCluster, by: 10) {
                        let now = Bench.nowNanos()
                        try await sim.insert("t", (start..<start + 10).map { ["id": .int(Int64($0 + index * 1_000_000)), "t": .int(now)] })
                    }
                    return []
                }
            }
            return try await group.reduce([], +)
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

    // MARK: 4. Isolation: a flood on A vs B's event latency

    /// B's probe latency, quiet and while another process floods cluster A, in `rounds` alternating
    /// quiet and flooded phases (pooled, so drift of the machine affects both alike). Each flooded
    /// phase starts a `--flood-worker` child process that subscribes to A's feed over its own control
    /// connection and writes to A's RethinkDB, so this process only probes and measures B.
    static func isolation(hostapp: String, socket: String, options: Options) async throws -> JSONValue {
        // A's RethinkDB and the flood's writer and reader stand for other machines: they run at the
        // lowest CPU priority (`--flood-priority`), so what B's latency shows is the daemon's isolation.
        let simA = try await SimProcess.start(hostapp: hostapp, priority: options.floodPriority, batchSize: options.simBatchSize)
        let simB = try await SimProcess.start(hostapp: hostapp, batchSize: options.simBatchSize)
        try await simA.createTable("flood")
        try await simB.createTable("probe")
        let clientB = try await ControlClient.connect(path: socket)
        try await register(clientB, cluster: "iso-a", sim: simA, feedBudget: options.aBudget, feedBatchRows: options.aBatchRows)
        try await register(clientB, cluster: "iso-b", sim: simB, feedBudget: nil)
        _ = try await subscribe(clientB, cluster: "iso-b", table: "probe", id: "b")
        try await waitForFeeds(clientB, cluster: "iso-b", 1)

        let probesPerPhase = max(1, options.probes / options.rounds)
        var nextID = 0
        @Sendable func probeB(firstID: Int) async throws -> [Duration] {
            async let latencies = readChanges(clientB, count: probesPerPhase)
            for index in 0..<probesPerPhase {
                try await simB.insert("probe", [["id": .int(Int64(firstID + index)), "t": .int(Bench.nowNanos())]])
                try await Task.sleep(for: .milliseconds(10))
            }
            return try await latencies
        }
        var quiet: [Duration] = []
        var flooded: [Duration] = []
        var floods: [JSONValue] = []
        var roundP99s: [JSONValue] = []
        let floodSeconds = Double(probesPerPhase) / 100 + 1
        for _ in 0..<options.rounds {
            let quietRound = try await probeB(firstID: nextID)
            nextID += probesPerPhase
            let workerArguments = [
                "--flood-worker", socket, "iso-a", simA.address.description, String(options.floodRate), String(floodSeconds),
            ]
            let (executable, command) = options.floodPriority.command(CommandLine.arguments[0], workerArguments)
            let worker = try BenchProcess(executable, command)
            _ = try await worker.waitForLine(prefix: "FLOOD READY")
            let floodedRound = try await probeB(firstID: nextID)
            nextID += probesPerPhase
            floods.append(try JSONParser.parse(try await worker.waitForLine(prefix: "FLOOD DONE ", timeout: .seconds(120))))
            worker.terminate()
            quiet += quietRound
            flooded += floodedRound
            roundP99s.append([
                "quiet": .double((Bench.percentile(quietRound, 0.99) * 1e6).rounded() / 1e3),
                "flooded": .double((Bench.percentile(floodedRound, 0.99) * 1e6).rounded() / 1e3),
            ])
        }
        let status = try await call(clientB, ["op": "rethink.status", "cluster": "iso-a"], id: "sa")
        _ = try await call(clientB, ["op": "cluster.unregister", "cluster": "iso-b"], id: "ub")
        _ = try await call(clientB, ["op": "cluster.unregister", "cluster": "iso-a"], id: "ua")
        await clientB.close()
        await simA.stop()
        await simB.stop()
        let quietP99 = Bench.percentile(quiet, 0.99)
        let floodedP99 = Bench.percentile(flooded, 0.99)
        return [
            "rounds": .int(Int64(options.rounds)),
            "a_flood_rate_requested": .int(Int64(options.floodRate)),
            "a_flood_priority": .string(options.floodPriority.rawValue),
            "a_feed_budget": status["feed_events_per_second_limit"] ?? .null,
            "a_feed_batch_rows": options.aBatchRows.map { .int(Int64($0)) } ?? "default",
            "a_feed_throttled_turns": status["feed_throttled_turns"] ?? .null,
            "a_feed_gaps": status["feed_gaps"] ?? .null,
            "a_floods": .array(floods),
            "b_p99_ms_by_round": .array(roundP99s),
            "b_latency_quiet_ms": Bench.percentiles(quiet),
            "b_latency_during_a_flood_ms": Bench.percentiles(flooded),
            "b_p99_change_percent": .double(((floodedP99 / max(quietP99, 1e-9) - 1) * 1000).rounded() / 10),
        ]
    }
}

/// `--flood-worker SOCKET CLUSTER HOST:PORT RATE SECONDS`: subscribes to CLUSTER's `flood` table
/// over the daemon's socket, prints `FLOOD READY`, writes rows to the RethinkDB at HOST:PORT at RATE
/// rows/s (0: as fast as it can) for SECONDS while reading every event line, then prints
/// `FLOOD DONE {json}`.
///
/// The writes are upserts over 10,000 ids (a status table under churn), so the table stays small
/// and a feed that resumes after the server skipped changes reconciles 10,000 rows, not millions.
/// Reading stops at the last write's event or 30 s after the writes ended (`drained` says which).
struct FloodWorker {
    let socket: String
    let cluster: String
    let address: RethinkAddress
    let rate: Int
    let seconds: Double

    init(_ arguments: [String]) throws {
        guard arguments.count == 5, let rate = Int(arguments[3]), let seconds = Double(arguments[4]) else {
            throw BenchError("usage: --flood-worker SOCKET CLUSTER HOST:PORT RATE SECONDS")
        }
        socket = arguments[0]
        cluster = arguments[1]
        address = try RethinkAddress(parsing: arguments[2])
        self.rate = rate
        self.seconds = seconds
    }

    func run() async throws {
        let client = try await ControlClient.connect(path: socket)
        _ = try await RethinkBench.subscribe(client, cluster: cluster, table: "flood", id: "flood")
        try await RethinkBench.waitForFeeds(client, cluster: cluster, 1)
        let writer = try await RethinkConnection.connect(to: address, user: "bench", password: RethinkBench.password)
        FileHandle.standardOutput.write(Data("FLOOD READY\n".utf8))
        let marker = getpid()
        let clock = ContinuousClock()
        let started = clock.now
        let end = started.advanced(by: .nanoseconds(Int64(seconds * 1e9)))
        let (written, read, drained) = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            group.addTask {
                var written = 0
                while clock.now < end {
                    if rate > 0 {
                        let due = started.advanced(by: .nanoseconds(Int64(Double(written) / Double(rate) * 1e9)))
                        if due > clock.now { try await Task.sleep(until: due, clock: clock) }
                    }
                    let rows: [JSONValue] = (0..<100).map { ["id": .int(Int64((written + $0) % 10_000)), "n": .int(Int64(written + $0))] }
                    _ = try await writer.run(ReQL.table("flood").insert(.array(rows), conflict: .replace))
                    written += 100
                }
                // One last row, marked by this process: its event tells the reader the flood is over.
                _ = try await writer.run(ReQL.table("flood").insert(["id": -1, "last": .int(Int64(marker))], conflict: .replace))
                return (written, 0)
            }
            group.addTask {
                let read = LockedValue(0)
                let drained = try? await withDeadline(.nanoseconds(Int64((seconds + 30) * 1e9)), "the flood's last event") {
                    while let line = try await client.receive() {
                        read.withLock { $0 += 1 }
                        if line.count < 400, let event = try? JSONParser.parse(line), event["new_val"]?["id"] == -1,
                            event["new_val"]?["last"] == .int(Int64(marker))
                        {
                            return true
                        }
                    }
                    return false
                }
                return (drained == true ? 0 : -1, read.withLock { $0 })
            }
            var totals = (0, 0)
            var drained = true
            for try await (w, r) in group {
                if w < 0 { drained = false } else { totals.0 += w }
                totals.1 += r
            }
            return (totals.0, totals.1, drained)
        }
        let elapsed = started.duration(to: clock.now).seconds
        await writer.close()
        await client.close()
        let summary: JSONValue = [
            "rows_written": .int(Int64(written)), "lines_read": .int(Int64(read)), "drained": .bool(drained),
            "events_per_second": .double((Double(read) / elapsed).rounded()), "seconds": .double((elapsed * 1000).rounded() / 1000),
        ]
        FileHandle.standardOutput.write(Data(("FLOOD DONE " + summary.jsonString + "\n").utf8))
    }
}
