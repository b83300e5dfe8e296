import BenchSupport
import Foundation
import GuildNetCore

/// A child process of the stress run (`hostapp serve`, `hostapp sim rethink`, `sqlite3`), with its
/// stdout and stderr in a log file (no pipe to drain). Started under `setpriv --pdeathsig KILL`
/// when setpriv exists, so a crashed stress tool leaves no orphans.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is configured and started in `init` (on the spawner's thread) and
    // afterwards only read through Foundation's thread-safe accessors (`processIdentifier`,
    // `isRunning`, `terminationStatus`); every other property is immutable.
    let process: Process
    let logPath: String
    let name: String
    /// The write end of the child's stdin when it was asked for (`sqlite3` reads statements there).
    let input: FileHandle?

    static let setpriv = "/usr/bin/setpriv"

    private init(process: Process, logPath: String, name: String, input: FileHandle?) {
        self.process = process
        self.logPath = logPath
        self.name = name
        self.input = input
    }

    /// Starts `executable` with `arguments` on `spawner`'s thread.
    static func start(
        _ name: String, executable: String, arguments: [String], logPath: String, withInput: Bool = false, spawner: Spawner
    ) async throws -> ChildProcess {
        try await spawner.run {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            guard let log = FileHandle(forWritingAtPath: logPath) else { throw BenchError("cannot write \(logPath)") }
            defer { try? log.close() }
            let process = Process()
            if FileManager.default.isExecutableFile(atPath: setpriv) {
                process.executableURL = URL(fileURLWithPath: setpriv)
                process.arguments = ["--pdeathsig", "KILL", "--", executable] + arguments
            } else {
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = arguments
            }
            process.standardOutput = log
            process.standardError = log
            var input: FileHandle?
            if withInput {
                let pipe = Pipe()
                process.standardInput = pipe
                input = pipe.fileHandleForWriting
            } else {
                process.standardInput = FileHandle.nullDevice
            }
            do {
                try process.run()
            } catch {
                throw BenchError("cannot start \(name) (\(executable)): \(error)")
            }
            return ChildProcess(process: process, logPath: logPath, name: name, input: input)
        }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// The log so far.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The first log line containing `marker` (polls the log file; a stress tool may poll).
    func waitForLine(containing marker: String, timeout: Duration) async throws -> String {
        var found: String?
        try await Bench.waitFor("\(name) to print \(marker)", timeout: timeout, interval: .milliseconds(20)) {
            if let line = log.split(separator: "\n").first(where: { $0.contains(marker) }) {
                found = String(line)
                return true
            }
            if !isRunning { throw BenchError("\(name) exited (status \(process.terminationStatus)) before printing \(marker): \(log.suffix(2000))") }
            return false
        }
        return found ?? ""
    }

    func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Waits for the process to exit; false after `timeout`.
    func waitForExit(timeout: Duration) async -> Bool {
        (try? await Bench.waitFor("\(name) to exit", timeout: timeout, interval: .milliseconds(20)) { !process.isRunning }) != nil
    }

    /// SIGTERM, then SIGKILL after `grace`.
    func stop(grace: Duration = .seconds(20)) async {
        try? input?.close()
        signal(SIGTERM)
        if await !waitForExit(timeout: grace) {
            signal(SIGKILL)
            _ = await waitForExit(timeout: .seconds(10))
        }
    }
}

/// One long-lived thread that starts every child process. `setpriv --pdeathsig` ties a child to
/// the *thread* that forked it; pool threads may exit when idle, this one lives for the whole run.
final class Spawner: Sendable {
    private struct Job: Sendable {
        let work: @Sendable () -> Void
    }

    private struct State {
        var jobs: [Job] = []
        var stopped = false
    }

    private let state = LockedValue(State())
    private let available = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init() {
        let thread = Thread { [state, available, finished] in
            while true {
                available.wait()
                let next = state.withLock { state -> Job? in state.jobs.isEmpty ? nil : state.jobs.removeFirst() }
                if let next {
                    next.work()
                } else if state.withLock({ $0.stopped }) {
                    break
                }
            }
            finished.signal()
        }
        thread.name = "stress-spawner"
        thread.start()
    }

    /// Runs `work` on the spawner's thread and returns its result.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            state.withLock { $0.jobs.append(Job { continuation.resume(with: Result { try work() }) }) }
            available.signal()
        }
    }

    /// Ends the thread once the jobs queued so far ran (call after every child exited).
    func shutdown() {
        state.withLock { $0.stopped = true }
        available.signal()
        finished.wait()
    }
}
