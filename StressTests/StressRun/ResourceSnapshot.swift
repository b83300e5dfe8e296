import Foundation
import GuildNetCore

/// The daemon's leak counters at one moment: from /proc (descriptors, threads, RSS, listening
/// sockets, child processes), `host.status` (supervised tasks, cluster actors and their children, open DBs) and
/// /metrics (series, and series whose cluster_id names no registered cluster).
struct ResourceSnapshot: Sendable, Equatable {
    var fds = 0
    var threads = 0
    var rssKiB = 0
    var listeners = 0
    var children = 0
    var supervisedTasks = 0
    var clusterActors = 0
    var clusterChildren = 0
    var openDatabases = 0
    var metricSeries: Int?
    var deadClusterSeries: Int?
    /// What each descriptor is, to name a leak (not compared).
    var descriptorTargets: [String] = []
    var deadSeriesSamples: [String] = []
    /// The daemon has freed memory to give back (an unregistration not yet followed by its trim):
    /// RSS is compared once this is `false` (not compared).
    var memoryTrimPending = false

    static func == (lhs: ResourceSnapshot, rhs: ResourceSnapshot) -> Bool {
        lhs.fds == rhs.fds && lhs.threads == rhs.threads && lhs.listeners == rhs.listeners && lhs.children == rhs.children
            && lhs.supervisedTasks == rhs.supervisedTasks && lhs.clusterActors == rhs.clusterActors
            && lhs.clusterChildren == rhs.clusterChildren && lhs.openDatabases == rhs.openDatabases
            && lhs.deadClusterSeries == rhs.deadClusterSeries
    }

    /// Takes a snapshot; `liveClusters` are the cluster ids registered now (series naming any other
    /// cluster id are dead).
    static func take(daemon: DaemonUnderTest, control: ControlConnection, liveClusters: Set<String>) async throws -> ResourceSnapshot {
        let pid = String(daemon.pid)
        var snapshot = ResourceSnapshot()
        snapshot.descriptorTargets = ProcFacts.descriptorTargets(pid: pid)
        snapshot.fds = snapshot.descriptorTargets.count
        snapshot.threads = ProcFacts.threads(pid: pid)
        snapshot.rssKiB = ProcFacts.residentKiB(pid: pid)
        snapshot.listeners = ProcFacts.listeningSockets(pid: pid).count
        snapshot.children = ProcFacts.children(of: daemon.pid).count
        let status = try await control.call("host.status", [:], label: "host.status(probe)")
        snapshot.supervisedTasks = Int(status["resources"]?["supervised_tasks"]?.intValue ?? -1)
        snapshot.clusterActors = Int(status["resources"]?["cluster_actors"]?.intValue ?? -1)
        snapshot.clusterChildren = Int(status["resources"]?["cluster_children"]?.intValue ?? -1)
        snapshot.openDatabases = Int(status["resources"]?["open_databases"]?.intValue ?? -1)
        snapshot.memoryTrimPending = status["memory_trim"]?["pending"]?.boolValue ?? false
        if let port = daemon.metricsPort {
            let body = try await LoopbackHTTP.get(port: port, path: "/metrics")
            var series = 0
            var dead: [String] = []
            for line in body.split(separator: "\n") where !line.hasPrefix("#") && !line.isEmpty {
                series += 1
                if let range = line.firstRange(of: "cluster_id=\"") {
                    let id = String(line[range.upperBound...].prefix { $0 != "\"" })
                    if !liveClusters.contains(id) { dead.append(String(line)) }
                }
            }
            snapshot.metricSeries = series
            snapshot.deadClusterSeries = dead.count
            snapshot.deadSeriesSamples = Array(dead.prefix(10))
        }
        return snapshot
    }

    var json: JSONValue {
        [
            "fds": .int(Int64(fds)), "threads": .int(Int64(threads)), "rss_kib": .int(Int64(rssKiB)), "listeners": .int(Int64(listeners)),
            "child_processes": .int(Int64(children)), "supervised_tasks": .int(Int64(supervisedTasks)),
            "cluster_actors": .int(Int64(clusterActors)),
            "cluster_children": .int(Int64(clusterChildren)), "open_databases": .int(Int64(openDatabases)),
            "metric_series": metricSeries.map { .int(Int64($0)) } ?? .null,
            "dead_cluster_series": deadClusterSeries.map { .int(Int64($0)) } ?? .null,
        ]
    }
}

/// Facts about another process from /proc (Linux).
enum ProcFacts {
    static func descriptorTargets(pid: String) -> [String] {
        let dir = "/proc/\(pid)/fd"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return entries.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + $0) }
    }

    static func threads(pid: String) -> Int { statusField("Threads:", pid: pid) }
    static func residentKiB(pid: String) -> Int { statusField("VmRSS:", pid: pid) }

    private static func statusField(_ name: String, pid: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    /// A whole /proc file (`String(contentsOfFile:)` may stop after its first page).
    private static func text(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }

    /// Listening sockets (TCP, TCP6, Unix) among `pid`'s descriptors, as "tcp:PORT" / "unix:PATH".
    static func listeningSockets(pid: String) -> [String] {
        let inodes = Set(
            descriptorTargets(pid: pid).compactMap { target -> String? in
                guard target.hasPrefix("socket:[") else { return nil }
                return String(target.dropFirst(8).dropLast())
            })
        var result: [String] = []
        for table in ["tcp", "tcp6"] {
            for line in (text("/proc/net/\(table)") ?? "").split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 9, fields[3] == "0A", inodes.contains(String(fields[9])) else { continue }
                result.append("\(table):\(fields[1].split(separator: ":").last.flatMap { Int($0, radix: 16) } ?? -1)")
            }
        }
        for line in (text("/proc/net/unix") ?? "").split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = __SO_ACCEPTCON.
            guard fields.count >= 7, fields[3] == "00010000", inodes.contains(String(fields[6])) else { continue }
            result.append("unix:\(fields.count > 7 ? String(fields[7]) : "")")
        }
        return result.sorted()
    }

    /// Processes whose parent is `pid` (the field after the command in /proc/N/stat).
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let child = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, Int32(fields[1]) == pid else { return nil }
            return child
        }
    }
}
