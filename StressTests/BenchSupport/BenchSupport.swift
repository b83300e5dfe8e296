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
    // `processIdentifier` and `isRunning` are thread-safe on Foundation's Process); `lines` is a
    // Sendable lock-protected buffer.
    public let process: Process
    private let output: Pipe
    private let lines = OutputLines()

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
        let lines = self.lines
        output.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            if chunk.isEmpty { handle.readabilityHandler = nil }
            lines.append(chunk)
        }
        try process.run()
    }

    public var pid: String { String(process.processIdentifier) }

    /// The rest of the first stdout line, not returned before, that starts with `prefix`.
    public func waitForLine(prefix: String, timeout: Duration = .seconds(60)) async throws -> String {
        let lines = self.lines
        return try await withDeadline(timeout, "a line starting with \(prefix)") {
            try await lines.first(prefix: prefix)
        }
    }

    public func terminate() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

/// A child's stdout split into lines; lines are consumed by the first ``first(prefix:)`` that
/// matches them. Waiting is cancellable and leaves the buffer intact for later calls.
final class OutputLines: Sendable {
    private struct State {
        var partial = Data()
        var lines: [String] = []
        var ended = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = LockedValue(State())

    /// Adds a chunk of output; an empty chunk is the end (a last line without "\n" counts).
    func append(_ chunk: Data) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if chunk.isEmpty {
                state.ended = true
                if !state.partial.isEmpty { state.lines.append(String(decoding: state.partial, as: UTF8.self)) }
                state.partial = Data()
            } else {
                state.partial.append(chunk)
                while let newline = state.partial.firstIndex(of: UInt8(ascii: "\n")) {
                    state.lines.append(String(decoding: state.partial[..<newline], as: UTF8.self))
                    state.partial.removeSubrange(...newline)
                }
            }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Takes the first line starting with `prefix`, waiting for more output as needed.
    func first(prefix: String) async throws -> String {
        while true {
            enum Step {
                case found(String)
                case ended, wait
            }
            let step = state.withLock { state -> Step in
                if let index = state.lines.firstIndex(where: { $0.hasPrefix(prefix) }) {
                    return .found(String(state.lines.remove(at: index).dropFirst(prefix.count)))
                }
                return state.ended ? .ended : .wait
            }
            switch step {
            case .found(let rest): return rest
            case .ended: throw BenchError("the process exited before printing \(prefix)")
            case .wait: break
            }
            try Task.checkCancellation()
            let id = state.withLock { state -> UInt64 in
                state.nextWaiter += 1
                return state.nextWaiter
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { state -> Bool in
                        // New output since the check, or cancelled: look again at once.
                        if Task.isCancelled || state.ended || state.lines.contains(where: { $0.hasPrefix(prefix) }) { return true }
                        state.waiters[id] = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
            }
        }
    }
}

extension Bench {
    /// A benchmark's `main`: prints the JSON object `body` returns; on error prints
    /// "<name>: <error>" to stderr and exits with status 1.
    public static func runMain(_ name: String, _ body: @Sendable () async throws -> JSONValue?) async {
        do {
            if let result = try await body() { print(result.jsonString) }
        } catch {
            FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
            exit(1)
        }
    }

    /// Polls `condition` every `interval` until it holds (a benchmark may poll; tests must not).
    /// - Throws: `timeout` when it still does not hold after `timeout`.
    public static func waitFor(
        _ what: String, timeout: Duration = .seconds(600), interval: Duration = .milliseconds(10), _ condition: () async throws -> Bool
    ) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while try await !condition() {
            guard clock.now < deadline else { throw HostError(.timeout, "benchmark timed out waiting for \(what)") }
            try await Task.sleep(for: interval)
        }
    }

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
