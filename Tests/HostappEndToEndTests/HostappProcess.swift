import Foundation
import GuildNetControl
import GuildNetCore
import TestSupport

/// The built `hostapp` binary, run as a child process with JSON logs captured from stderr.
final class HostappProcess: Sendable {
    let process: Process
    let stateDirectory: String
    let socketPath: String
    private let stderrLines = LockedValue<[String]>([])
    private let partial = LockedValue<Data>(Data())

    static var binary: String { hostappBinary.path }

    var pid: String { String(process.processIdentifier) }

    /// Starts `hostapp serve` on `stateDirectory` with its socket there, plus `extra` arguments.
    init(stateDirectory: String, extra: [String] = [], environment: [String: String] = [:]) throws {
        self.stateDirectory = stateDirectory
        self.socketPath = stateDirectory + "/hostapp.sock"
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--state-dir", stateDirectory, "--socket", socketPath, "--log-format", "json"] + extra
        var env = ProcessInfo.processInfo.environment
        env.merge(environment, uniquingKeysWith: { _, new in new })
        process.environment = env
        let errorPipe = Pipe()
        process.standardError = errorPipe
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        let lines = stderrLines
        let partial = self.partial
        PipeDrain.start(errorPipe.fileHandleForReading) { data in Self.absorb(data, partial: partial, into: lines) }
        try process.runOrphanSafe()
    }

    private static func absorb(_ data: Data, partial: LockedValue<Data>, into stderrLines: LockedValue<[String]>) {
        guard !data.isEmpty else { return }
        let lines: [String] = partial.withLock { buffer in
            buffer.append(data)
            var complete: [String] = []
            while let newline = buffer.firstIndex(of: 0x0A) {
                complete.append(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
                buffer.removeSubrange(buffer.startIndex...newline)
            }
            return complete
        }
        stderrLines.withLock { $0.append(contentsOf: lines) }
    }

    /// Every stderr line so far.
    var logLines: [String] { stderrLines.withLock { $0 } }

    /// Parsed JSON log records so far.
    var logRecords: [JSONValue] { logLines.compactMap { try? JSONParser.parse($0) } }

    /// Waits for the `host_ready` log record and returns it.
    func waitUntilReady(timeout: Duration = .seconds(30)) async throws -> JSONValue {
        var ready: JSONValue?
        try await eventually("hostapp host_ready", timeout: timeout) {
            ready = logRecords.first { $0["event"] == "host_ready" }
            if ready == nil && !process.isRunning {
                throw ConditionTimeout(what: "hostapp exited early: \(logLines.joined(separator: "\n"))")
            }
            return ready != nil
        }
        return ready ?? .null
    }

    func client() async throws -> ControlClient {
        try await ControlClient.connect(path: socketPath)
    }

    /// One request over a fresh connection; returns the parsed reply.
    func request(_ fields: JSONValue) async throws -> JSONValue {
        let client = try await client()
        var request = fields.objectValue ?? [:]
        request["id"] = "e2e"
        let reply = try await client.request(JSONValue.object(request).jsonString, id: "e2e")
        await client.close()
        return try JSONParser.parse(reply)
    }

    func terminate() { if process.isRunning { process.terminate() } }

    /// Waits for the process to exit; returns its status.
    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        try await eventually("hostapp exit", timeout: timeout) { !process.isRunning }
        return process.terminationStatus
    }
}
