import BenchSupport
import Foundation
import GuildNetControl
import GuildNetCore

/// `hostapp-bench`: drives a real `hostapp serve` process over its control socket and prints one
/// JSON object of figures. See docs/performance.md for targets and recorded results.
///
///     hostapp-bench --hostapp .build/release/hostapp [--clusters 1000] [--put-clients 8]
///                   [--put-clusters 100] [--puts 200000] [--window 128]
@main
struct RuntimeBench {
    struct Options {
        var hostapp = ".build/release/hostapp"
        var clusters = 1000
        var putClients = 8
        var putClusters = 100
        var puts = 200_000
        var window = 128
        var registerConcurrency = 16

        init(_ arguments: [String]) throws {
            let flags = try Bench.flags(
                arguments,
                allowed: ["--hostapp", "--clusters", "--put-clients", "--put-clusters", "--puts", "--window", "--register-concurrency"])
            hostapp = flags["--hostapp"] ?? hostapp
            clusters = try Bench.int(flags["--clusters"], "--clusters", default: clusters)
            putClients = try Bench.int(flags["--put-clients"], "--put-clients", default: putClients)
            putClusters = try Bench.int(flags["--put-clusters"], "--put-clusters", default: putClusters)
            puts = try Bench.int(flags["--puts"], "--puts", default: puts)
            window = try Bench.int(flags["--window"], "--window", default: window)
            registerConcurrency = try Bench.int(flags["--register-concurrency"], "--register-concurrency", default: registerConcurrency)
        }
    }

    static func main() async {
        await Bench.runMain("hostapp-bench") { try await run(try Options(Array(CommandLine.arguments.dropFirst()))) }
    }

    static func run(_ options: Options) async throws -> JSONValue {
        let stateDirectory = "/tmp/gnbench-\(getpid())"
        try? FileManager.default.removeItem(atPath: stateDirectory)
        defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
        let socket = stateDirectory + "/hostapp.sock"

        // 1. Start to ready, and the empty daemon's footprint.
        let clock = ContinuousClock()
        let started = clock.now
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: options.hostapp)
        daemon.arguments = ["serve", "--state-dir", stateDirectory, "--socket", socket, "--log-level", "warning"]
        daemon.standardInput = FileHandle.nullDevice
        daemon.standardOutput = FileHandle.nullDevice
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate() } }
        let control = try await Bench.connectWhenReady(socket: socket, deadline: .seconds(30))
        _ = try await control.request(#"{"id":"s","op":"host.status"}"#, id: "s")
        let startToReady = started.duration(to: clock.now)
        let pid = String(daemon.processIdentifier)
        let emptyRSS = Proc.residentKiB(pid: pid)
        let emptyFDs = Proc.openFDs(pid: pid)

        // 2. Register N clusters from several connections; latency of each register → ready.
        let registerStart = clock.now
        let registerLatencies = try await concurrently(options.clusters, workers: options.registerConcurrency, socket: socket) { client, index in
            let began = clock.now
            let reply = try await client.request(#"{"id":"r\#(index)","op":"cluster.register","cluster":"bench-\#(index)"}"#, id: "r\(index)")
            guard try JSONParser.parse(reply)["result"]?["state"] == "ready" else {
                throw BenchError("register bench-\(index): \(String(decoding: reply, as: UTF8.self))")
            }
            return began.duration(to: clock.now)
        }
        let allReady = registerStart.duration(to: clock.now)
        let loadedRSS = Proc.residentKiB(pid: pid)
        let loadedFDs = Proc.openFDs(pid: pid)

        // 3. db.put throughput: pipelining clients spread over the first clusters.
        let putsPerClient = options.puts / options.putClients
        let putStart = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for clientIndex in 0..<options.putClients {
                group.addTask {
                    let client = try await ControlClient.connect(path: socket)
                    var sent = 0
                    while sent < putsPerClient {
                        let batch = min(options.window, putsPerClient - sent)
                        // One write carries the whole window of requests, as a pipelining client would.
                        var lines: [String] = []
                        for offset in 0..<batch {
                            let n = sent + offset
                            let cluster = (clientIndex * 7 + n) % options.putClusters
                            lines.append(#"{"id":\#(n),"op":"db.put","cluster":"bench-\#(cluster)","key":"k\#(clientIndex)-\#(n % 1000)","value":{"n":\#(n)}}"#)
                        }
                        try await client.send(lines.joined(separator: "\n"))
                        for _ in 0..<batch {
                            guard let line = try await client.receive() else { throw BenchError("connection closed during puts") }
                            if line.count > 12 && !String(decoding: line.prefix(80), as: UTF8.self).contains("\"ok\":true") {
                                throw BenchError("put failed: \(String(decoding: line, as: UTF8.self))")
                            }
                        }
                        sent += batch
                    }
                    await client.close()
                }
            }
            try await group.waitForAll()
        }
        let putElapsed = putStart.duration(to: clock.now)
        let putsDone = putsPerClient * options.putClients

        // 4. Unregister every cluster; latency of each.
        let unregisterLatencies = try await concurrently(options.clusters, workers: options.registerConcurrency, socket: socket) { client, index in
            let began = clock.now
            let reply = try await client.request(#"{"id":"u\#(index)","op":"cluster.unregister","cluster":"bench-\#(index)"}"#, id: "u\(index)")
            guard try JSONParser.parse(reply)["ok"] == true else {
                throw BenchError("unregister bench-\(index): \(String(decoding: reply, as: UTF8.self))")
            }
            return began.duration(to: clock.now)
        }
        // The unregistering connections were just closed; the daemon closes its ends asynchronously,
        // so wait (up to 5 s) for the count to settle before comparing it with the empty daemon's.
        let settleStart = clock.now
        try? await Bench.waitFor("the daemon's FDs to settle", timeout: .seconds(5)) { Proc.openFDs(pid: pid) <= emptyFDs }
        let fdsSettled = settleStart.duration(to: clock.now)
        let afterFDs = Proc.openFDs(pid: pid)
        _ = try? await control.request(#"{"id":"x","op":"host.shutdown"}"#, id: "x")
        await control.close()
        let shutdownStart = clock.now
        while daemon.isRunning && shutdownStart.duration(to: clock.now) < .seconds(30) {
            try await Task.sleep(for: .milliseconds(5))
        }

        let perClusterRSS = Double(loadedRSS - emptyRSS) / Double(options.clusters)
        let perClusterFDs = Double(loadedFDs - emptyFDs) / Double(options.clusters)
        return [
            "machine": ["cores": .int(Int64(ProcessInfo.processInfo.activeProcessorCount))],
            "daemon_start_to_ready_ms": .double(Bench.ms(startToReady)),
            "daemon_rss_kib_no_clusters": .int(Int64(emptyRSS)),
            "daemon_fds_no_clusters": .int(Int64(emptyFDs)),
            "clusters": .int(Int64(options.clusters)),
            "register_all_ready_seconds": .double(allReady.seconds),
            "register_latency_ms": Bench.percentiles(registerLatencies),
            "idle_rss_kib_per_cluster": .double(perClusterRSS),
            "idle_fds_per_cluster": .double(perClusterFDs),
            "daemon_rss_kib_loaded": .int(Int64(loadedRSS)),
            "daemon_fds_loaded": .int(Int64(loadedFDs)),
            "db_put": [
                "clients": .int(Int64(options.putClients)),
                "clusters": .int(Int64(options.putClusters)),
                "window": .int(Int64(options.window)),
                "replies": .int(Int64(putsDone)),
                "seconds": .double(putElapsed.seconds),
                "replies_per_second": .double(Double(putsDone) / putElapsed.seconds),
            ],
            "unregister_latency_ms": Bench.percentiles(unregisterLatencies),
            "daemon_fds_after_unregister": .int(Int64(afterFDs)),
            "daemon_fds_settle_ms": .double(Bench.ms(fdsSettled)),
            "daemon_exit_status": daemon.isRunning ? .null : .int(Int64(daemon.terminationStatus)),
        ]
    }

    /// Runs `count` operations on `workers` connections; returns each operation's duration.
    static func concurrently(
        _ count: Int, workers: Int, socket: String,
        _ operation: @escaping @Sendable (ControlClient, Int) async throws -> Duration
    ) async throws -> [Duration] {
        try await withThrowingTaskGroup(of: [Duration].self) { group in
            for worker in 0..<workers {
                group.addTask {
                    let client = try await ControlClient.connect(path: socket)
                    var durations: [Duration] = []
                    var index = worker
                    while index < count {
                        durations.append(try await operation(client, index))
                        index += workers
                    }
                    await client.close()
                    return durations
                }
            }
            var all: [Duration] = []
            for try await part in group { all += part }
            return all
        }
    }
}
