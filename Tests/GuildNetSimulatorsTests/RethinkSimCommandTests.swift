import Foundation
import GuildNetCore
import TestSupport
import Testing

/// `hostapp sim rethink`: prints its address once listening, serves, exits 0 on SIGTERM.
@Suite("hostapp sim rethink")
struct RethinkSimCommandTests {
    @Test("prints `RethinkSim listening on 127.0.0.1:PORT`, authenticates the configured user, exits on SIGTERM")
    func simRethink() async throws {
        let process = try StreamingProcess(
            URL(fileURLWithPath: KubeSimHTTPSTests.hostappBinary), ["sim", "rethink", "--port", "0", "--user", "ops", "--password", "pw"])
        defer { process.stop() }
        try await eventually("the listening line", timeout: .seconds(30)) { process.output.contains("RethinkSim listening on 127.0.0.1:") }
        let line = process.output.split(separator: "\n").first { $0.hasPrefix("RethinkSim listening on 127.0.0.1:") }
        let port = line.flatMap { Int($0.split(separator: ":").last ?? "") }
        #expect(process.output.split(separator: "\n").count == 1, "\(process.output)")
        let client = try await RethinkRawClient.connect(port: try #require(port))
        #expect(try await client.handshake(user: "ops", password: "pw") == .authenticated)
        #expect(try await client.start(1, [59, []]).rows == [["test"]])
        client.close()
        process.stop()
        try await eventually("hostapp exits on SIGTERM", timeout: .seconds(20)) { process.exitCode != nil }
        #expect(process.exitCode == 0, "\(process.output)")
    }

    @Test("SIGHUP restarts it: connections are closed, new ones are served, tables answer OP_FAILED until ready")
    func sighupRestarts() async throws {
        let process = try StreamingProcess(
            URL(fileURLWithPath: KubeSimHTTPSTests.hostappBinary),
            ["sim", "rethink", "--port", "0", "--restart-unavailable-ms", "600000"])
        defer { process.stop() }
        try await eventually("the listening line", timeout: .seconds(30)) { process.output.contains("RethinkSim listening on 127.0.0.1:") }
        let line = process.output.split(separator: "\n").first { $0.hasPrefix("RethinkSim listening on 127.0.0.1:") }
        let port = try #require(line.flatMap { Int($0.split(separator: ":").last ?? "") })
        let before = try await RethinkRawClient.authenticated(port: port)
        _ = try await before.start(1, [60, [Q.db("test"), "t"]])  // table_create
        process.send(SIGHUP)
        try await eventually("the open connection is closed") { try await before.isClosedByServer() }
        before.close()
        let after = try await RethinkRawClient.authenticated(port: port)
        let response = try await after.run(2, [1, Q.table("test", "t")])
        #expect(response["t"] == 18, "\(response)")
        #expect(response["e"] == 4_100_000, "\(response)")
        #expect(response["r"] == ["Cannot perform read: primary replica for shard [\"\", +inf) not available"], "\(response)")
        #expect(try await after.start(3, [62, [Q.db("test")]]).rows == [["t"]])  // table_list still answers
        after.close()
        process.stop()
        try await eventually("hostapp exits on SIGTERM", timeout: .seconds(20)) { process.exitCode != nil }
        #expect(process.exitCode == 0, "\(process.output)")
    }
}
