import ArgumentParser
import GuildNetCore

/// A fault the stress run injects while the load runs (`--faults`).
enum FaultKind: String, CaseIterable, Sendable, Comparable {
    /// A KubeSim stops answering for a moment (every request held, then released).
    case apiStall = "api-stall"
    /// Every watch stream and port-forward tunnel of a KubeSim is cut.
    case cutStreams = "cut-streams"
    /// A KubeSim restarts its watch cache: resumed watches get `410 Expired` and relist.
    case expired = "410"
    /// A RethinkSim closes every client connection (feeds report a gap and resume).
    case rethinkDrop = "rethink-drop"
    /// Another process (the sqlite3 CLI) holds an exclusive lock on a cluster's `local.db`.
    case dbLocked = "db-locked"
    /// The RethinkSim running as a separate process (`hostapp sim rethink`) is killed with SIGKILL
    /// and started again on the same port (its data is gone: feeds report a gap or end).
    case killSimulator = "kill-sim"

    static func < (lhs: FaultKind, rhs: FaultKind) -> Bool { lhs.rawValue < rhs.rawValue }

    /// `all`, `none` or a comma-separated list.
    static func parse(_ text: String) throws -> Set<FaultKind> {
        switch text {
        case "all": return Set(allCases)
        case "none", "": return []
        default:
            var kinds: Set<FaultKind> = []
            for name in text.split(separator: ",") {
                guard let kind = FaultKind(rawValue: String(name)) else {
                    throw ValidationError("unknown fault \(name); known: all, none, \(allCases.map(\.rawValue).joined(separator: ", "))")
                }
                kinds.insert(kind)
            }
            return kinds
        }
    }
}

/// What one run does: the resolved profile plus explicit flags.
struct Scenario: Sendable {
    var profile: String
    /// Clusters registered for the whole run (each with its feeds, watches and forwards).
    var clusters: Int
    /// Register/unregister cycles of extra clusters while the load runs.
    var churnCycles: Int
    /// How many churn cycles run at the same time.
    var churnParallelism: Int
    /// Changefeeds per cluster, each on its own table with a writer.
    var feeds: Int
    /// Watches per cluster (pods and configmaps of the cluster's namespace, alternately).
    var watches: Int
    /// Port-forwards per cluster, each with request traffic.
    var forwards: Int
    var faults: Set<FaultKind>
    /// How long the steady load runs (churn continues until its cycles are done).
    var duration: Duration
    /// Pause between two faults.
    var faultInterval: Duration
    /// Pause between two requests of one load loop (a writer, a DB loop, a forward's traffic).
    var loadPause: Duration
    /// In-process KubeSims and RethinkSims the clusters share.
    var kubeSimulators: Int
    var rethinkSimulators: Int
    /// RSS growth above this fails the run (the other counters must return exactly).
    var rssBoundMiB: Int
    /// How long counters may take to settle back to the baseline before a leak is declared.
    var settleTimeout: Duration
    /// Checks the checker (`--inject-defects`): the first steady cluster is never unregistered
    /// (a leak) and its first feed's first change is ignored (a lost row); the run must fail.
    var injectDefects = false

    static func profile(_ name: String) throws -> Scenario {
        switch name {
        case "ci":
            // <= 3 min on 2 busy cores with a debug build: every subsystem and every fault, small.
            return Scenario(
                profile: "ci", clusters: 3, churnCycles: 8, churnParallelism: 2, feeds: 2, watches: 2, forwards: 1,
                faults: Set(FaultKind.allCases), duration: .seconds(40), faultInterval: .seconds(3), loadPause: .milliseconds(50), kubeSimulators: 2,
                rethinkSimulators: 2, rssBoundMiB: 64, settleTimeout: .seconds(60))
        case "soak":
            return Scenario(
                profile: "soak", clusters: 100, churnCycles: 200, churnParallelism: 4, feeds: 2, watches: 2, forwards: 1,
                faults: Set(FaultKind.allCases), duration: .seconds(300), faultInterval: .seconds(4), loadPause: .milliseconds(250), kubeSimulators: 4,
                rethinkSimulators: 4, rssBoundMiB: 96, settleTimeout: .seconds(120))
        case "quick":
            return Scenario(
                profile: "quick", clusters: 2, churnCycles: 2, churnParallelism: 1, feeds: 1, watches: 1, forwards: 1, faults: [],
                duration: .seconds(10), faultInterval: .seconds(3), loadPause: .milliseconds(50), kubeSimulators: 1, rethinkSimulators: 1, rssBoundMiB: 64,
                settleTimeout: .seconds(60))
        default:
            throw ValidationError("unknown profile \(name); known: quick, ci, soak")
        }
    }

    var summary: JSONValue {
        [
            "profile": .string(profile), "clusters": .int(Int64(clusters)), "churn_cycles": .int(Int64(churnCycles)),
            "churn_parallelism": .int(Int64(churnParallelism)), "feeds_per_cluster": .int(Int64(feeds)),
            "watches_per_cluster": .int(Int64(watches)), "forwards_per_cluster": .int(Int64(forwards)),
            "faults": .array(faults.sorted().map { .string($0.rawValue) }), "duration_seconds": .double(duration.seconds),
            "rss_bound_mib": .int(Int64(rssBoundMiB)),
        ]
    }
}
