import ArgumentParser
import BenchSupport
import Foundation
import GuildNetCore

/// `hostapp-stress`: drives a real `hostapp serve` with its own simulators under load, churn and
/// faults; prints a progress line, then a table and one JSON object; exits non-zero on any leak,
/// lost event or crash (docs/operations.md, "Stress runs").
@main
struct StressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hostapp-stress",
        abstract: "Stress a hostapp daemon: clusters, churn, feeds, watches, forwards and faults; fail on leaks or lost events.",
        discussion: """
            Profiles: quick (default; 2 clusters, no faults, 10 s), ci (3 clusters, 8 churn cycles, every fault, 40 s of load;
            <= 3 min on 2 busy cores), soak (100 clusters, 200 churn cycles, every fault, 300 s). Flags override the profile.
            Faults: api-stall, cut-streams, 410, rethink-drop, db-locked, kill-sim (or all, none).
            Exit status: 0 passed; 1 a leak, a lost event, a watch not matching its server, a missing final event, a crash
            of the daemon, or a run that could not be set up; 64 usage error.
            """
    )

    @Option(help: "The hostapp binary: starts `hostapp serve` on a fresh state directory (and `hostapp sim rethink` for kill-sim).")
    var hostapp: String?

    @Option(help: "Drive an already running daemon on this control socket instead of starting one.")
    var socket: String?

    @Option(name: .customLong("metrics-port"), help: "With --socket: the daemon's /metrics port (else the metric-series check is skipped).")
    var metricsPort: Int?

    @Option(help: "quick, ci or soak.")
    var profile: String = "quick"

    @Option(help: "Clusters registered for the whole run.")
    var clusters: Int?

    @Option(name: .customLong("churn-cycles"), help: "Register/unregister cycles of extra clusters under load.")
    var churnCycles: Int?

    @Option(help: "Changefeeds per cluster, each on its own table with a writer.")
    var feeds: Int?

    @Option(help: "Watches per cluster (pods and configmaps of its namespace, alternately).")
    var watches: Int?

    @Option(help: "Port-forwards per cluster (0-4), each with traffic.")
    var forwards: Int?

    @Option(help: "Faults to inject while the load runs: all, none, or a comma-separated list.")
    var faults: String?

    @Option(help: "Seconds of steady load (churn continues until its cycles are done).")
    var duration: Int?

    @Option(name: .customLong("rss-bound-mib"), help: "Daemon RSS growth (MiB) above which the run fails.")
    var rssBoundMiB: Int?

    @Option(name: .customLong("json-out"), help: "Also write the JSON report to this file.")
    var jsonOut: String?

    @Flag(help: "Keep the work directory (daemon state and logs) even when the run passes.")
    var keep = false

    @Flag(
        name: .customLong("inject-defects"),
        help: "Check the checks: leave one cluster registered and ignore one delivered row; the run must then fail (exit 1).")
    var injectDefects = false

    func validate() throws {
        guard hostapp != nil || socket != nil else { throw ValidationError("give --hostapp PATH (start a daemon) or --socket PATH (an existing one)") }
        if let hostapp, !FileManager.default.isExecutableFile(atPath: hostapp) { throw ValidationError("--hostapp \(hostapp) is not an executable") }
        for (name, value) in [("--clusters", clusters), ("--churn-cycles", churnCycles), ("--feeds", feeds), ("--watches", watches)] {
            if let value, value < 0 { throw ValidationError("\(name) must be >= 0") }
        }
        if let forwards, !(0...4).contains(forwards) { throw ValidationError("--forwards must be 0...4") }
        if let duration, duration < 1 { throw ValidationError("--duration must be >= 1") }
        _ = try scenario()
    }

    /// The profile with the explicit flags applied.
    func scenario() throws -> Scenario {
        var scenario = try Scenario.profile(profile)
        if let clusters { scenario.clusters = clusters }
        if let churnCycles { scenario.churnCycles = churnCycles }
        if let feeds { scenario.feeds = feeds }
        if let watches { scenario.watches = watches }
        if let forwards { scenario.forwards = forwards }
        if let faults { scenario.faults = try FaultKind.parse(faults) }
        if let duration { scenario.duration = .seconds(duration) }
        if let rssBoundMiB { scenario.rssBoundMiB = rssBoundMiB }
        scenario.injectDefects = injectDefects
        return scenario
    }

    func run() async throws {
        let scenario = try scenario()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("hostapp-stress-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let runner = StressRunner(scenario: scenario, hostapp: hostapp, socket: socket, metricsPort: metricsPort, workDirectory: work)
        let report: StressReport
        do {
            report = try await runner.run()
        } catch {
            FileHandle.standardError.write(Data("hostapp-stress: the run could not complete: \(error)\nwork directory kept: \(work)\n".utf8))
            throw ExitCode(1)
        }
        print(report.table)
        let json = report.json.jsonString
        print(json)
        if let jsonOut { try Data((json + "\n").utf8).write(to: URL(fileURLWithPath: jsonOut)) }
        if report.passed && !keep {
            try? FileManager.default.removeItem(atPath: work)
        } else {
            FileHandle.standardError.write(Data("hostapp-stress: work directory (daemon state and logs): \(work)\n".utf8))
        }
        if !report.passed { throw ExitCode(1) }
    }
}
