import BenchSupport
import Foundation
import GuildNetCore

/// The `hostapp serve` the run drives: started by the tool (`--hostapp`) or already running (`--socket`).
struct DaemonUnderTest: Sendable {
    let socket: String
    let pid: Int32
    /// Its state directory when known (the `db-locked` fault needs it).
    let stateDirectory: String?
    /// The /metrics port when known.
    let metricsPort: Int?
    /// The child process when the tool started it.
    let process: ChildProcess?

    /// Starts `hostapp serve` on a fresh state directory under `workDirectory`, with metrics on a
    /// free loopback port and JSON logs in `workDirectory/hostapp.log`.
    static func spawn(hostapp: String, workDirectory: String, spawner: Spawner) async throws -> DaemonUnderTest {
        let state = workDirectory + "/state"
        let socket = workDirectory + "/hostapp.sock"
        let process = try await ChildProcess.start(
            "hostapp serve", executable: hostapp,
            arguments: ["serve", "--state-dir", state, "--socket", socket, "--metrics-addr", "127.0.0.1:0", "--log-format", "json"],
            logPath: workDirectory + "/hostapp.log", spawner: spawner)
        let line = try await process.waitForLine(containing: "\"host_ready\"", timeout: .seconds(120))
        let record = try? JSONParser.parse(line)
        let port = record?["metrics_port"].flatMap { $0.intValue.map(Int.init) ?? $0.stringValue.flatMap { Int($0) } }
        return DaemonUnderTest(socket: socket, pid: process.pid, stateDirectory: state, metricsPort: port, process: process)
    }

    /// A daemon already serving `socket`: its pid and state directory come from `host.status`.
    static func attach(socket: String, metricsPort: Int?, recorder: OpRecorder) async throws -> DaemonUnderTest {
        let status = try await ControlConnection.with(socket: socket, recorder: recorder) { try await $0.call("host.status", [:]) }
        guard let pid = status["pid"]?.intValue else { throw BenchError("host.status did not name the daemon's pid: \(status.jsonString)") }
        return DaemonUnderTest(
            socket: socket, pid: Int32(pid), stateDirectory: status["state_dir"]?.stringValue, metricsPort: metricsPort, process: nil)
    }

    /// Whether the daemon process still runs (not exited, not a zombie).
    var isAlive: Bool {
        if let process { return process.isRunning }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).prefix(1)
        return state != "Z" && state != "X"
    }

    /// The last lines of the daemon's log (for a crash report).
    var logTail: String {
        guard let process else { return "" }
        return process.log.split(separator: "\n").suffix(30).joined(separator: "\n")
    }
}
