import BenchSupport
import Foundation
import GuildNetCore
import GuildNetRuntime

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
            ChildProcessLauncher.configure(process, executable: executable, arguments: arguments)
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

/// Starts every child process from ``ChildProcessLauncher``'s thread: `setpriv --pdeathsig` ties a
/// child to the *thread* that forked it, and pool threads may exit when idle; that one lives as
/// long as the process.
struct Spawner: Sendable {
    /// Runs `work` on the launcher's thread and returns its result.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await ChildProcessLauncher.perform(work)
    }
}
