import Foundation
import GuildNetCore
import GuildNetMigration
import TestSupport
import Testing

/// The end-to-end path: migrate → verify through the daemon → rollback → a
/// `legacy-global` daemon serves the original data.
@Suite("rollback then legacy-global serving")
struct RollbackServingTests {
    /// Runs `hostapp serve --stdin` with `arguments` and sends `requests` one at a time, each after
    /// the previous reply; returns the replies by id. EOF then shuts the daemon down.
    func serve(_ state: String, _ arguments: [String], _ requests: [JSONValue]) async throws -> [String: JSONValue] {
        let binary = hostappBinary
        return try await runBlocking {
            let process = Process()
            process.executableURL = binary
            process.arguments = ["serve", "--stdin", "--state-dir", state, "--log-level", "error"] + arguments
            let input = Pipe()
            let output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.runOrphanSafe()
            var replies: [String: JSONValue] = [:]
            var buffer = Data()
            for request in requests {
                input.fileHandleForWriting.write(Data((request.jsonString + "\n").utf8))
                while !buffer.contains(0x0A) {
                    let chunk = output.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                }
                guard let newline = buffer.firstIndex(of: 0x0A) else { break }
                let line = Array(buffer[buffer.startIndex..<newline])
                buffer.removeSubrange(buffer.startIndex...newline)
                if let reply = try? JSONParser.parse(line), let id = reply["id"]?.stringValue { replies[id] = reply }
            }
            try input.fileHandleForWriting.close()
            _ = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw TestFailure("hostapp serve exited \(process.terminationStatus)") }
            return replies
        }
    }

    @Test("migrate, verify through the daemon, roll back, and a legacy-global daemon serves the original data")
    func migrateRollbackLegacyServing() async throws {
        let state = try makeLegacyState(bulk: 3, encrypted: false)
        defer { state.remove() }
        let original = try #require(FileManager.default.contents(atPath: state.appending("guildnet.sqlite")))
        var opts = options(state, commit: true, key: false)
        opts.backupDirectory = state.appending("bk")
        _ = try await migrate(opts)

        let requests: [JSONValue] = [
            ["id": "r", "op": "cluster.register", "cluster": "c1"],
            ["id": "bulk", "op": "db.get", "cluster": "c1", "key": "app/key-1"],
            ["id": "svc", "op": "db.get", "cluster": "c1", "key": "published_services/web"],
            ["id": "job", "op": "db.get", "cluster": "c1", "key": "jobs/job-0"],
            ["id": "ns", "op": "settings.get", "cluster": "c1", "key": "namespace"],
            ["id": "status", "op": "host.status"],
        ]
        let expectedBulk = try JSONParser.parse(LegacyFixture.bulkValue(cluster: "c1", n: 1))
        let migrated = try await serve(state.path, [], requests)
        #expect(migrated["status"]?["result"]?["storage_layout"] == "per-cluster")
        #expect(migrated["bulk"]?["result"]?["value"] == expectedBulk)
        #expect(migrated["svc"]?["result"]?["value"] == ["port": 80])
        #expect(migrated["job"]?["result"]?["value"]?["kind"] == "deploy")
        #expect(migrated["ns"]?["result"]?["settings"]?["namespace"]?["value"] == "ns-0")

        let rollback = try await runHostapp(["rollback-db", "--state-dir", state.path, "--backup", state.appending("bk")], environment: [:])
        #expect(rollback.exitCode == 0, "\(rollback.output)")
        #expect(FileManager.default.contents(atPath: state.appending("guildnet.sqlite")) == original)

        let legacy = try await serve(state.path, ["--storage-layout", "legacy-global"], requests)
        #expect(legacy["status"]?["result"]?["storage_layout"] == "legacy-global")
        #expect(legacy["r"]?["result"]?["state"] == "ready")
        #expect(legacy["bulk"]?["result"]?["value"] == expectedBulk)
        #expect(legacy["svc"]?["result"]?["value"] == ["port": 80])
        #expect(legacy["job"]?["result"]?["value"]?["kind"] == "deploy")
        #expect(legacy["ns"]?["result"]?["settings"]?["namespace"]?["value"] == "ns-0")
        #expect(legacy["ns"]?["result"]?["settings"]?["namespace"]?["source"] == "cluster")
        // Serving read-only requests left the restored legacy DB as it was.
        #expect(FileManager.default.contents(atPath: state.appending("guildnet.sqlite")) == original)
    }
}
