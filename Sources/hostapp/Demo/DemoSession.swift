import Dispatch
import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetDaemon
import GuildNetMetrics
import GuildNetRuntime
import GuildNetSimulators
import GuildNetStateDirectory
import Logging

/// One run of `hostapp demo` once its simulators are up: the daemon in this process, the clusters
/// registered and busy, the live table, then teardown and the leak report.
struct DemoSession: Sendable {
    let table: DemoTable
    let stops: SignalStream
    let workDirectory: String
    let stateDirectory: String
    let duration: Duration?
    let rowsPerSecond: Int
    let logLevel: Logger.Level
    var metricsAddress: MetricsAddress?

    /// What the driver saw of the daemon's own counters (`host.status` resources).
    struct Resources: Sendable {
        var before: JSONValue
        var after: JSONValue
    }

    /// Runs the daemon and the driver; returns whether the leak report is clean.
    func run(_ clusters: [DemoCluster]) async throws -> Bool {
        // Process-wide things created on first use (the runtime's timer descriptors per clock) are
        // created now, so the baseline already holds them.
        try await Task.sleep(for: .milliseconds(1), clock: .continuous)
        try await Task.sleep(for: .milliseconds(1), clock: .suspending)
        await Self.warmUpDispatchTimers()
        try await ChildProcessLauncher.prepare()  // the thread (and its run loop) children are forked from
        let before = ProcessSnapshot.take()
        let (readyStream, readyContinuation) = AsyncStream<[String: String]>.makeStream()
        var options = DaemonOptions(stateDirectory: stateDirectory)
        options.socketPath = StateDirectory(stateDirectory).socket
        options.metricsAddress = metricsAddress
        options.handlesSignals = false
        options.logLevel = logLevel
        options.onReady = { fields in
            readyContinuation.yield(fields)
            readyContinuation.finish()
        }
        let level = logLevel
        let logger = Logger(label: "hostapp") { label in HostLogHandler(label: label, format: .text, level: level) }
        let socket = options.socketPath ?? ""
        let daemonOptions = options
        let resources: Resources? = try await withThrowingTaskGroup(of: Resources?.self) { group in
            group.addTask {
                // The demo's settings are its own: the caller's GUILDNET_* variables are not read.
                try await Daemon.run(daemonOptions, environment: [:], logger: logger)
                return nil
            }
            group.addTask {
                var ready: [String: String]?
                for await fields in readyStream { ready = fields }
                guard let ready else { return nil }
                return try await drive(clusters, socket: socket, ready: ready)
            }
            var resources: Resources?
            while let outcome = try await group.next() {
                if let outcome {
                    resources = outcome  // the driver finished and asked the daemon to stop
                } else if resources == nil {
                    group.cancelAll()  // the daemon stopped before the driver asked it to: end the driver too
                }
            }
            return resources
        }
        readyContinuation.finish()
        // The simulators run in this process: their side of the daemon's connections closes once
        // they read the daemon's close, a moment later (longer on a loaded machine). Wait (at most 15 s) for that.
        var after = ProcessSnapshot.take()
        let settleBy = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < settleBy, after.exceeds(before) {
            try? await Task.sleep(for: .milliseconds(20))  // a poll of /proc, not a wait for an outcome
            after = ProcessSnapshot.take()
        }
        return report(before: before, after: after, resources: resources)
    }

    /// Dispatch makes a timer descriptor per clock and QoS tier the first time one is used and
    /// keeps it for the process's life; using each once here keeps them out of the leak report.
    static func warmUpDispatchTimers() async {
        for qos in [DispatchQoS.background, .utility, .default, .userInitiated, .userInteractive] {
            let queue = DispatchQueue.global(qos: qos.qosClass)
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                queue.asyncAfter(deadline: .now() + .milliseconds(1)) { done.resume() }
            }
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                queue.asyncAfter(wallDeadline: .now() + .milliseconds(1)) { done.resume() }
            }
        }
    }

    // MARK: Driver

    private func drive(_ clusters: [DemoCluster], socket: String, ready: [String: String]) async throws -> Resources {
        table.note("control socket: \(socket)")
        if let port = ready["metrics_port"], let host = metricsAddress?.host { table.note("metrics:        http://\(host):\(port)/metrics") }
        table.note("try:            hostapp ctl --socket \(socket) cluster.list")
        table.note("                (from a checkout: swift run hostapp ctl --socket \(socket) cluster.status cluster=demo-1)")
        let control = try await DemoControl.connect(socket)
        let before = try await control.call(["op": "host.status"])["resources"] ?? .null
        var streams: [DemoCluster.Streams] = []
        var ports: [Int] = []
        for cluster in clusters {
            let password = "demo-" + UUID().uuidString.lowercased()
            try await cluster.register(control, workDirectory: workDirectory, password: password)
            streams.append(try await cluster.openStreams(socket: socket))
            ports.append(try await cluster.startForward(control))
            table.note("registered \(cluster.name): pod watch, changefeed on \(DemoCluster.table), port-forward on 127.0.0.1:\(ports.last ?? 0)")
        }

        let rowsPerSecond = self.rowsPerSecond
        await withTaskGroup(of: Void.self) { group in
            for (index, cluster) in clusters.enumerated() {
                let (stream, port) = (streams[index], ports[index])
                group.addTask { await cluster.readStreams(stream, control: control) }
                group.addTask { await cluster.writeRows(rowsPerSecond: rowsPerSecond) }
                group.addTask { await cluster.touchPods() }
                group.addTask { await cluster.forwardTraffic(port: port) }
            }
            group.addTask { await refreshTable(clusters, control: control) }
            await waitUntilFlowing(clusters)
            await waitForStop()
            group.cancelAll()
            for stream in streams { await stream.client.close() }
        }

        table.note("stopping: unregistering \(clusters.count) cluster\(clusters.count == 1 ? "" : "s")")
        for cluster in clusters {
            let values = cluster.counters.snapshot
            let keys = try? await countKeys(cluster.name, control: control, after: nil).count
            let result = try await control.call(["op": "cluster.unregister", "cluster": .string(cluster.name)])
            let seconds = result["teardown_seconds"]?.doubleValue ?? 0
            table.note(
                "  \(cluster.name): \(values.watchEvents) watch events, \(values.feedEvents) feed events (\(values.rowsWritten) rows written), "
                    + "\(DemoTable.bytes(values.forwardBytes)) forwarded, \(keys.map(String.init) ?? "?") rows in its DB, "
                    + "torn down in \(String(format: "%.0f", seconds * 1000)) ms")
        }
        let after = try await control.call(["op": "host.status"])["resources"] ?? .null
        _ = try? await control.call(["op": "host.shutdown"])
        await control.client.close()
        return Resources(before: before, after: after)
    }

    /// Waits (at most a minute) until every cluster has seen a watch event, a feed event and echoed
    /// forward traffic, so `--duration` counts time with everything flowing.
    private func waitUntilFlowing(_ clusters: [DemoCluster]) async {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, !Task.isCancelled {
            let flowing = clusters.allSatisfy { cluster in
                let values = cluster.counters.snapshot
                return values.watchEvents > 0 && values.feedEvents > 0 && values.forwardBytes > 0
            }
            if flowing { return }
            do {
                try await Task.sleep(for: .milliseconds(50))  // a poll of in-process counters
            } catch {
                return
            }
        }
    }

    /// Returns on the first SIGINT/SIGTERM, or once `duration` has passed.
    private func waitForStop() async {
        let (stops, duration) = (self.stops, self.duration)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in stops.stream { return }
            }
            if let duration {
                group.addTask { try? await Task.sleep(for: duration) }
            }
            _ = await group.next()
            group.cancelAll()
        }
    }

    /// Redraws the table every second until cancelled.
    private func refreshTable(_ clusters: [DemoCluster], control: DemoControl) async {
        let clock = ContinuousClock()
        let started = clock.now
        var last = (at: started, watch: [Int](repeating: 0, count: clusters.count), feed: [Int](repeating: 0, count: clusters.count))
        var keys = [Int](repeating: 0, count: clusters.count)
        var cursors = [String?](repeating: nil, count: clusters.count)
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: .seconds(1))
            } catch {
                return
            }
            var states: [String: String] = [:]
            if let list = try? await control.call(["op": "cluster.list"]) {
                for entry in list["clusters"]?.arrayValue ?? [] {
                    if let name = entry["cluster"]?.stringValue { states[name] = entry["state"]?.stringValue }
                }
            }
            let now = clock.now
            let seconds = max(0.001, Double(last.at.duration(to: now).components.attoseconds) / 1e18 + Double(last.at.duration(to: now).components.seconds))
            var rows: [DemoRow] = []
            for (index, cluster) in clusters.enumerated() {
                let values = cluster.counters.snapshot
                if let counted = try? await countKeys(cluster.name, control: control, after: cursors[index]) {
                    keys[index] += counted.count
                    cursors[index] = counted.last ?? cursors[index]
                }
                rows.append(
                    DemoRow(
                        cluster: cluster.name, state: states[cluster.name] ?? "?", pods: values.pods.count,
                        watchPerSecond: Double(values.watchEvents - last.watch[index]) / seconds,
                        feedPerSecond: Double(values.feedEvents - last.feed[index]) / seconds, forwardBytes: values.forwardBytes,
                        databaseKeys: keys[index], errors: values.errors))
                last.watch[index] = values.watchEvents
                last.feed[index] = values.feedEvents
            }
            last.at = now
            if Task.isCancelled { return }
            let elapsed = started.duration(to: now)
            table.render(rows, elapsed: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
    }

    /// Keys under `rows/` after `after` (the rows only grow, so the table counts incrementally).
    private func countKeys(_ cluster: String, control: DemoControl, after: String?) async throws -> (count: Int, last: String?) {
        var count = 0
        var cursor = after
        while true {
            var request: [String: JSONValue] = ["op": "db.list", "cluster": .string(cluster), "prefix": "rows/", "limit": 10_000]
            if let cursor { request["after"] = .string(cursor) }
            let page = try await control.call(request)
            let items = page["items"]?.arrayValue ?? []
            count += items.count
            if let key = items.last?["key"]?.stringValue { cursor = key }
            guard page["next"]?.stringValue != nil, !items.isEmpty else { return (count, cursor) }
        }
    }

    // MARK: Leak report

    private func report(before: ProcessSnapshot, after: ProcessSnapshot, resources: Resources?) -> Bool {
        var clean = true
        var lines = ["leak report (before the runtime started -> after it stopped):"]
        func line(_ label: String, _ old: Int?, _ new: Int?) {
            guard let old, let new else {
                lines.append("  \(label.padding(toLength: 22, withPad: " ", startingAt: 0)) n/a")
                return
            }
            let verdict = new <= old ? "ok" : "LEAK (+\(new - old))"
            if new > old { clean = false }
            lines.append("  \(label.padding(toLength: 22, withPad: " ", startingAt: 0)) \(old) -> \(new)  \(verdict)")
        }
        // Dispatch creates a timer descriptor per clock and tier on first use and keeps it for the
        // process's life (the warm-up does not always reach every tier): not the runtime's leak.
        let added = after.added(since: before)
        let timers = added.filter { $0.hasSuffix("anon_inode:[timerfd]") }
        line("open descriptors", before.openFiles, after.openFiles.map { $0 - timers.count })
        for descriptor in timers { lines.append("    (not counted: \(descriptor), a Dispatch timer kept for the process's life)") }
        if let old = before.openFiles, let new = after.openFiles, new - timers.count > old {
            for descriptor in added.filter({ !timers.contains($0) }).prefix(10) { lines.append("    new \(descriptor)") }
        }
        line("listening sockets", before.listeners, after.listeners)
        if let resources {
            for (key, label) in [
                ("supervised_tasks", "supervised tasks"), ("cluster_actors", "cluster actors"), ("cluster_children", "cluster children"),
                ("open_databases", "open databases"),
            ] {
                line(label, resources.before[key]?.intValue.map(Int.init), resources.after[key]?.intValue.map(Int.init))
            }
        } else {
            clean = false
            lines.append("  the daemon stopped before the demo finished; see the log above")
        }
        lines.append(clean ? "no leaks" : "LEAKS FOUND")
        for text in lines { table.note(text) }
        return clean
    }
}
