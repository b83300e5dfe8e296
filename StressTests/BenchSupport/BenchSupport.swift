import Foundation
import GuildNetCore

/// Small helpers shared by the benchmark executables.
public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum Bench {
    /// Milliseconds with microsecond resolution.
    public static func ms(_ duration: Duration) -> Double { (duration.seconds * 1e6).rounded() / 1e3 }

    /// `{"p50":…,"p99":…,"max":…,"count":…}` in milliseconds, or null without samples.
    public static func percentiles(_ durations: [Duration]) -> JSONValue {
        let sorted = durations.sorted()
        guard !sorted.isEmpty else { return .null }
        func at(_ p: Double) -> Double { ms(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) }
        return ["p50": .double(at(0.5)), "p99": .double(at(0.99)), "max": .double(ms(sorted[sorted.count - 1])), "count": .int(Int64(sorted.count))]
    }

    /// Parses `--flag value` pairs into a dictionary, refusing unknown flags.
    public static func flags(_ arguments: [String], allowed: Set<String>) throws -> [String: String] {
        var result: [String: String] = [:]
        var iterator = arguments.makeIterator()
        while let flag = iterator.next() {
            guard allowed.contains(flag) else { throw BenchError("unknown flag \(flag); known: \(allowed.sorted().joined(separator: " "))") }
            guard let value = iterator.next() else { throw BenchError("missing value for \(flag)") }
            result[flag] = value
        }
        return result
    }

    /// A positive integer flag value.
    public static func int(_ value: String?, _ flag: String, default fallback: Int) throws -> Int {
        guard let value else { return fallback }
        guard let int = Int(value), int > 0 else { throw BenchError("\(flag) needs a positive integer") }
        return int
    }

    /// Monotonic nanoseconds (same clock across tasks of one process).
    public static func nowNanos() -> Int64 { Int64(clamping: DispatchTime.now().uptimeNanoseconds) }
}

/// Facts about a process from /proc.
public enum Proc {
    public static func residentKiB(pid: String = "self") -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    public static func openFDs(pid: String = "self") -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
    }
}
