import Foundation
import GuildNetControl
import GuildNetCore

/// Small helpers shared by the benchmark executables.
public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum Bench {
    /// Milliseconds with microsecond resolution.
    public static func ms(_ duration: Duration) -> Double { (duration.seconds * 1e6).rounded() / 1e3 }

    /// The `p` quantile (0…1) of `durations` in seconds; 0 without samples.
    public static func percentile(_ durations: [Duration], _ p: Double) -> Double {
        let sorted = durations.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))].seconds
    }

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

/// A child process of the benchmark (the daemon, a simulator), terminated when the bench ends.
public final class BenchProcess: @unchecked Sendable {
    // @unchecked: `process` is configured before `run()` and afterwards only read (`terminate`,
    // `processIdentifier` and `isRunning` are thread-safe on Foundation's Process); `lines` is an
    // AsyncStream (Sendable) fed only by the pipe's readability handler.
    public let process: Process
    private let output: Pipe
    private let lines: AsyncStream<String>

    /// Starts `executable` with `arguments` (stderr inherited, stdout captured for ``waitForLine(prefix:timeout:)``).
    ///
    /// Its stdout is read by Foundation's readability handler (a dispatch source, not a thread of the
    /// cooperative pool), so waiting for a line never blocks this process's Swift tasks.
    public init(_ executable: String, _ arguments: [String]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        output = Pipe()
        process.standardOutput = output
        let (lines, continuation) = AsyncStream<String>.makeStream()
        self.lines = lines
        let pending = LockedValue(Data())
        output.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            guard !chunk.isEmpty else {
                handle.readabilityHandler = nil
                continuation.finish()
                return
            }
            let complete: [String] = pending.withLock { buffer in
                buffer.append(chunk)
                guard let last = buffer.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
                let text = String(decoding: buffer[..<last], as: UTF8.self)
                buffer.removeSubrange(...last)
                return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            }
            for line in complete { continuation.yield(line) }
        }
        try process.run()
    }

    public var pid: String { String(process.processIdentifier) }

    /// The rest of the first stdout line (not seen before) that starts with `prefix`.
    public func waitForLine(prefix: String, timeout: Duration = .seconds(60)) async throws -> String {
        let lines = self.lines
        return try await withDeadline(timeout, "a line starting with \(prefix)") {
            for await line in lines where line.hasPrefix(prefix) {
                return String(line.dropFirst(prefix.count))
            }
            try Task.checkCancellation()
            throw BenchError("the process exited before printing \(prefix)")
        }
    }

    public func terminate() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

extension Bench {
    /// Connects to a daemon's control socket, retrying until `deadline`.
    public static func connectWhenReady(socket: String, deadline: Duration) async throws -> ControlClient {
        let clock = ContinuousClock()
        let start = clock.now
        while true {
            if let client = try? await ControlClient.connect(path: socket) { return client }
            guard start.duration(to: clock.now) < deadline else { throw BenchError("daemon not ready within \(deadline)") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}
