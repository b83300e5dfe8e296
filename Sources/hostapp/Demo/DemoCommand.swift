import ArgumentParser
import Dispatch
import Foundation
import GuildNetControl
import GuildNetCore
import GuildNetDaemon
import GuildNetMetrics
import GuildNetSimulators
import GuildNetStateDirectory
import Logging

/// `hostapp demo`: the daemon runtime in this process with simulated clusters, a live table of
/// what each one does, and a leak report at the end.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the daemon with simulated clusters (KubeSim + RethinkSim each) and show them live; Ctrl-C stops it.",
        discussion: """
            Each cluster gets simulated pods and a service, a RethinkDB table with a writer, a pod watch, a \
            changefeed whose rows land in the cluster's own DB, and a port-forward carrying echo traffic. The \
            control socket and /metrics are served meanwhile (`hostapp ctl` works against them). On Ctrl-C or \
            after --duration everything is torn down and a leak report compares descriptors, listeners and \
            tasks before and after; the exit status is 1 when anything leaked.
            """
    )

    @Option(help: "Simulated clusters.")
    var clusters: Int = 3

    @Option(help: "Stop after this many seconds of live table (default: run until Ctrl-C).")
    var duration: Int?

    @Option(help: "Simulated pods per cluster.")
    var pods: Int = 3

    @Option(name: .customLong("rows-per-second"), help: "Rows a second each cluster's writer inserts.")
    var rowsPerSecond: Int = 5

    @Option(help: "State directory (default: a new temporary one, removed at the end).")
    var stateDir: String?

    @Option(name: .long, help: "Serve /metrics at this loopback HOST:PORT (port 0 picks one).")
    var metricsAddr: String = "127.0.0.1:0"

    @Option(help: "Daemon log level (logs go to stderr).")
    var logLevel: String = "error"

    @Flag(help: "Plain lines even on a terminal.")
    var plain = false

    func validate() throws {
        guard (1...50).contains(clusters) else { throw ValidationError("--clusters must be 1...50") }
        guard (duration ?? 1) >= 1 else { throw ValidationError("--duration must be at least 1") }
        guard (1...200).contains(pods) else { throw ValidationError("--pods must be 1...200") }
        guard (1...1000).contains(rowsPerSecond) else { throw ValidationError("--rows-per-second must be 1...1000") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical")
        }
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let stops = SignalStream([SIGINT, SIGTERM])
        defer { stops.cancel() }
        let table = DemoTable(interactive: !plain && isatty(1) == 1)
        let work = try Self.makeWorkDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let state = stateDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? work + "/state"
        defer { if stateDir == nil { try? FileManager.default.removeItem(atPath: state) } }

        let session = DemoSession(
            table: table, stops: stops, workDirectory: work, stateDirectory: state, duration: duration.map { .seconds($0) },
            rowsPerSecond: rowsPerSecond, logLevel: Logger.Level(rawValue: logLevel) ?? .error, metricsAddress: try MetricsAddress.parse(metricsAddr))
        table.note("hostapp demo: starting \(clusters) simulated cluster\(clusters == 1 ? "" : "s") (KubeSim + RethinkSim each, \(pods) pods)")
        var simOptions = KubeSimOptions()
        simOptions.simulatedPods = pods
        let clean = try await Self.withSimulators(count: clusters, kubeOptions: simOptions) { sims in
            try await session.run(sims)
        }
        if !clean { throw ExitCode(1) }
    }

    private static func makeWorkDirectory() throws -> String {
        var template = Array((NSTemporaryDirectory() + "/hostapp-demo-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let base = buffer.baseAddress, let result = mkdtemp(base) else { return nil }
            return String(cString: result)
        }
        guard let path = made else {
            throw HostError(.io, "cannot create a temporary directory: \(String(cString: strerror(errno)))")
        }
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// Runs `count` KubeSim + RethinkSim pairs (each a child task of this call) around `body`.
    static func withSimulators<T: Sendable>(
        count: Int, kubeOptions: KubeSimOptions, running: [DemoCluster] = [], _ body: @Sendable ([DemoCluster]) async throws -> T
    ) async throws -> T {
        guard running.count < count else { return try await body(running) }
        return try await KubeSim.withRunning(options: kubeOptions) { kube, kubeEndpoint in
            try await RethinkSim.withRunning { rethink, rethinkEndpoint in
                let cluster = DemoCluster(
                    name: "demo-\(running.count + 1)", kube: kube, kubeEndpoint: kubeEndpoint, rethink: rethink, rethinkEndpoint: rethinkEndpoint)
                return try await withSimulators(count: count, kubeOptions: kubeOptions, running: running + [cluster], body)
            }
        }
    }
}
