import BenchSupport
import Foundation
import GuildNetCore

/// The end of a run: a table for people and one JSON object (the last line of stdout).
struct StressReport: Sendable {
    var scenario: Scenario
    var wallSeconds: Double
    var loadSeconds: Double
    var recorder: OpRecorder
    var delivery: FeedLedger.Verdict
    var faultsInjected: [String: Int]
    var churnCompleted: Int
    var leakCheck: LeakCheck?
    var crashed: Bool
    var exitStatus: Int32?
    var childrenLeft: Int
    var failures: [String]
    var failureCount: [String: Int]

    var leaks: [String] { leakCheck?.leaks ?? [] }
    var passed: Bool { !crashed && leaks.isEmpty && failures.isEmpty && delivery.lost == 0 && leakCheck != nil && (exitStatus ?? 0) == 0 && childrenLeft == 0 }

    var json: JSONValue {
        let summaries = recorder.summaries()
        var ops: [String: JSONValue] = [:]
        for summary in summaries {
            ops[summary.op] = [
                "count": .int(Int64(summary.count)), "errors": .int(Int64(summary.errors)), "p50_ms": .double(rounded(summary.p50)),
                "p99_ms": .double(rounded(summary.p99)), "max_ms": .double(rounded(summary.max)),
            ]
        }
        let total = recorder.totalOperations
        func ints(_ dictionary: [String: Int]) -> JSONValue { .object(dictionary.mapValues { .int(Int64($0)) }) }
        var leaksJSON: JSONValue = .null
        if let leakCheck {
            leaksJSON = [
                "before": leakCheck.before.json, "after": leakCheck.after.json, "leaked": .array(leakCheck.leaks.map { .string($0) }),
                "rss_growth_kib": .int(Int64(leakCheck.after.rssKiB - leakCheck.before.rssKiB)),
                "added_descriptors": .array(leakCheck.addedDescriptors.map { .string($0) }),
                "dead_series_samples": .array(leakCheck.after.deadSeriesSamples.map { .string($0) }),
            ]
        }
        return [
            "tool": "hostapp-stress", "passed": .bool(passed), "scenario": scenario.summary, "wall_seconds": .double(rounded(wallSeconds)),
            "load_seconds": .double(rounded(loadSeconds)), "operations": .int(Int64(total)),
            "operations_per_second": .double(rounded(loadSeconds > 0 ? Double(total) / loadSeconds : 0)), "ops": .object(ops),
            "errors_by_code": ints(recorder.errorsByCode), "faults_injected": ints(faultsInjected), "counters": ints(recorder.counters),
            "delivery": [
                "rows_acknowledged": .int(Int64(delivery.rows)), "expected_deliveries": .int(Int64(delivery.expectedDeliveries)),
                "delivered": .int(Int64(delivery.delivered)), "covered_by_gap": .int(Int64(delivery.coveredByGap)),
                "lost": .int(Int64(delivery.lost)), "gaps": .int(Int64(delivery.gaps)), "feeds": .int(Int64(delivery.feeds)),
            ],
            "churn": ["cycles": .int(Int64(scenario.churnCycles)), "completed": .int(Int64(churnCompleted))], "leaks": leaksJSON,
            "daemon": [
                "crashed": .bool(crashed), "exit_status": exitStatus.map { .int(Int64($0)) } ?? .null, "children_left": .int(Int64(childrenLeft)),
            ],
            "failures": ints(failureCount), "failure_samples": .array(failures.map { .string($0) }),
        ]
    }

    private func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

    /// The human-readable table.
    var table: String {
        var lines: [String] = []
        func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
        func left(_ text: String, _ width: Int) -> String { text.count >= width ? text : String(repeating: " ", count: width - text.count) + text }
        let total = recorder.totalOperations
        lines.append(
            "hostapp-stress \(scenario.profile): \(scenario.clusters) clusters, \(churnCompleted)/\(scenario.churnCycles) churn cycles, \(String(format: "%.1f", loadSeconds)) s of load, \(total) ops (\(String(format: "%.0f", loadSeconds > 0 ? Double(total) / loadSeconds : 0))/s)"
        )
        lines.append(pad("op", 22) + left("count", 9) + left("errors", 8) + left("p50 ms", 10) + left("p99 ms", 10) + left("max ms", 10))
        for summary in recorder.summaries() {
            lines.append(
                pad(summary.op, 22) + left(String(summary.count), 9) + left(String(summary.errors), 8) + left(String(format: "%.2f", summary.p50), 10)
                    + left(String(format: "%.2f", summary.p99), 10) + left(String(format: "%.1f", summary.max), 10))
        }
        let errors = recorder.errorsByCode.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        lines.append("errors by code: \(errors.isEmpty ? "none" : errors)")
        let faults = faultsInjected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        lines.append("faults injected: \(faults.isEmpty ? "none" : faults)")
        lines.append(
            "delivery: \(delivery.rows) rows acknowledged, \(delivery.expectedDeliveries) expected deliveries: \(delivery.delivered) delivered, \(delivery.coveredByGap) covered by a reported gap, \(delivery.lost) lost (\(delivery.gaps) gaps on \(delivery.feeds) feeds)"
        )
        if let leakCheck {
            lines.append(pad("counter", 22) + left("before", 12) + left("after", 12))
            let rows: [(String, Int, Int)] = [
                ("fds", leakCheck.before.fds, leakCheck.after.fds), ("threads", leakCheck.before.threads, leakCheck.after.threads),
                ("rss KiB", leakCheck.before.rssKiB, leakCheck.after.rssKiB), ("listeners", leakCheck.before.listeners, leakCheck.after.listeners),
                ("child processes", leakCheck.before.children, leakCheck.after.children),
                ("supervised tasks", leakCheck.before.supervisedTasks, leakCheck.after.supervisedTasks),
                ("cluster actors", leakCheck.before.clusterActors, leakCheck.after.clusterActors),
                ("cluster children", leakCheck.before.clusterChildren, leakCheck.after.clusterChildren),
                ("open databases", leakCheck.before.openDatabases, leakCheck.after.openDatabases),
                ("metric series", leakCheck.before.metricSeries ?? -1, leakCheck.after.metricSeries ?? -1),
                ("dead-cluster series", leakCheck.before.deadClusterSeries ?? -1, leakCheck.after.deadClusterSeries ?? -1),
            ]
            for (name, before, after) in rows { lines.append(pad(name, 22) + left(String(before), 12) + left(String(after), 12)) }
            lines.append("leaks: \(leakCheck.leaks.isEmpty ? "none" : leakCheck.leaks.joined(separator: ", "))")
        } else {
            lines.append("leaks: not checked (the run did not get that far)")
        }
        lines.append("daemon: \(crashed ? "CRASHED" : "ok")\(exitStatus.map { ", exit status \($0)" } ?? ""), \(childrenLeft) child processes left")
        for failure in failures { lines.append("FAIL \(failure)") }
        lines.append(passed ? "PASS" : "FAIL")
        return lines.joined(separator: "\n")
    }
}
