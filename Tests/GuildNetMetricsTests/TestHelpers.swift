import Foundation
import GuildNetCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: Exposition parsing

/// One sample line of a Prometheus text exposition.
struct Sample: Equatable {
    var name: String
    var labels: [String: String]
    /// Gauges are written as `1.0`, counters as `1`: compare numbers, not text.
    var value: Double
}

/// A minimal parser for the text exposition that swift-prometheus writes (enough for assertions).
struct ParsedExposition {
    var samples: [Sample] = []
    /// Family names that have a `# HELP` line.
    var helpLines: [String] = []
    /// Family names that have a `# TYPE` line.
    var typeLines: [String] = []

    /// The host-wide families every HostMetrics exports from the start besides
    /// hostapp_clusters_active (churn, DB open failures, children, process); most tests look past them.
    static let hostCounters: Set<String> = [
        "hostapp_clusters_registered_total", "hostapp_clusters_unregistered_total", "hostapp_db_open_failures_total",
        "hostapp_child_restarts_total", "hostapp_child_give_ups_total", "hostapp_process_open_fds",
        "hostapp_process_resident_memory_bytes", "hostapp_supervised_tasks",
    ]

    /// - Parameter includeHostCounters: keep the families of ``hostCounters`` (left out by default).
    init(_ bytes: [UInt8], includeHostCounters: Bool = false) {
        let text = String(decoding: bytes, as: UTF8.self)
        func kept(_ name: String) -> Bool { includeHostCounters || !Self.hostCounters.contains(name) }
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") {
                let name = String(line.dropFirst(7).prefix { $0 != " " })
                if kept(name) { helpLines.append(name) }
            } else if line.hasPrefix("# TYPE ") {
                let name = String(line.dropFirst(7).prefix { $0 != " " })
                if kept(name) { typeLines.append(name) }
            } else if let sample = Self.parseSample(line), kept(sample.name) {
                samples.append(sample)
            }
        }
    }

    func samples(named name: String) -> [Sample] { samples.filter { $0.name == name } }

    func samples(ofCluster key: String) -> [Sample] { samples.filter { $0.labels["cluster_id"] == key } }

    /// The value of the one sample with `name` and exactly `labels`.
    func value(_ name: String, _ labels: [String: String]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    private static func parseSample(_ line: Substring) -> Sample? {
        guard let valueSpace = line.lastIndex(of: " ") else { return nil }
        guard let value = Double(line[line.index(after: valueSpace)...]) else { return nil }
        let series = line[..<valueSpace]
        guard let brace = series.firstIndex(of: "{") else {
            return Sample(name: String(series), labels: [:], value: value)
        }
        var labels: [String: String] = [:]
        var rest = series[series.index(after: brace)...]
        while let equals = rest.firstIndex(of: "=") {
            let label = String(rest[..<equals])
            var index = rest.index(after: equals)  // at the opening quote
            guard index < rest.endIndex, rest[index] == "\"" else { return nil }
            index = rest.index(after: index)
            var labelValue = ""
            while index < rest.endIndex, rest[index] != "\"" {
                if rest[index] == "\\" {
                    index = rest.index(after: index)
                    guard index < rest.endIndex else { return nil }
                    labelValue.append(rest[index] == "n" ? "\n" : rest[index])
                } else {
                    labelValue.append(rest[index])
                }
                index = rest.index(after: index)
            }
            guard index < rest.endIndex else { return nil }
            labels[label] = labelValue
            rest = rest[rest.index(after: index)...]
            if rest.hasPrefix(",") { rest = rest.dropFirst() }
        }
        return Sample(name: String(series[..<brace]), labels: labels, value: value)
    }
}
