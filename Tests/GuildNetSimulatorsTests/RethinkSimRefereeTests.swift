import Foundation
import GuildNetCore
import GuildNetSimulators
import TestSupport
import Testing

/// The official RethinkDB Python driver (`pip install rethinkdb==2.4.10.post1`) referees RethinkSim.
/// Missing python3 or the module fails the test (it is installed by scripts/install-test-tools.sh).
@Suite("RethinkSim official driver referee", .serialized)
struct RethinkSimRefereeTests {
    static let script = Repository.root + "/scripts/referee/rethink_referee.py"
    static let env = URL(fileURLWithPath: "/usr/bin/env")

    /// Fails with a clear message unless python3 can import the driver.
    static func requireDriver() async throws {
        let probe = try await runProcess(env, ["python3", "-c", "import rethinkdb, sys; print(sys.version)"])
        guard probe.exitCode == 0 else {
            throw TestFailure(
                "python3 with the official `rethinkdb` module is required (pip install rethinkdb==2.4.10.post1): \(probe.output)")
        }
    }

    @Test(
        "the Python driver: user+password, schema, insert, read back, filter, order_by, count, pluck, update, delete, paging, max_batch_rows, a changefeed fed by a second connection, a feed queue's overflow notice, ReqlAuthError"
    )
    func officialDriver() async throws {
        try await Self.requireDriver()
        var options = RethinkSimOptions()
        options.users = ["admin": "", "referee": "correct horse"]
        try await RethinkSim.withRunning(options: options) { sim, endpoint in
            let result = try await runProcess(
                Self.env,
                ["python3", Self.script, "--port", String(endpoint.port), "--user", "referee", "--password", "correct horse"])
            let summaryLine = result.output.split(separator: "\n").last.map(String.init) ?? ""
            let summary = try? JSONParser.parse(summaryLine)
            #expect(result.exitCode == 0, "\(result.output)")
            #expect(summary?["ok"] == true, "\(result.output)")
            #expect(summary?["failed"] == [], "\(result.output)")
            #expect((summary?["checks"]?.intValue ?? 0) >= 30, "\(result.output)")
            try await eventually("the driver's connections are closed") { await sim.openConnections == 0 }
            #expect(await sim.activeChangefeeds == 0)
        }
    }

    @Test(
        "the Python driver after a restart: ReqlOpFailedError (a ReqlAvailabilityError) with RethinkDB's primary-replica messages for reads, writes and changefeeds until the tables are ready, then the same rows"
    )
    func officialDriverSeesRestartUnavailability() async throws {
        try await Self.requireDriver()
        try await RethinkSim.withRunning { sim, endpoint in
            try await sim.createDatabase("restart")
            try await sim.createTable("items", database: "restart")
            try await sim.insert([["id": 1]], table: "items", database: "restart")
            // A window longer than the script needs; ended below rather than waited out.
            await sim.restart(unavailableFor: .seconds(600))
            #expect(await sim.tablesAvailable == false)
            for phase in ["restarted", "ready"] {
                if phase == "ready" { await sim.makeTablesAvailable() }
                let result = try await runProcess(
                    Self.env, ["python3", Self.script, "--port", String(endpoint.port), "--password", "", "--phase", phase])
                let summary = try? JSONParser.parse(result.output.split(separator: "\n").last.map(String.init) ?? "")
                #expect(result.exitCode == 0, "\(phase): \(result.output)")
                #expect(summary?["failed"] == [], "\(phase): \(result.output)")
            }
            #expect(try await sim.documents(table: "items", database: "restart").count == 1)
        }
    }
}
