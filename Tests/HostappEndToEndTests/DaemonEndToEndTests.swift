import Foundation
import GuildNetControl
import GuildNetCore
import TestSupport
import Testing

@Suite("hostapp daemon end to end")
struct DaemonEndToEndTests {
    @Test("serve, ctl, SIGTERM: graceful exit, socket removed, every cluster destroyed")
    func lifecycle() async throws {
        let dir = TemporaryDirectory("e2e")
        defer { dir.remove() }
        let daemon = try HostappProcess(stateDirectory: dir.path)
        defer { daemon.terminate() }
        _ = try await daemon.waitUntilReady()
        let attributes = try FileManager.default.attributesOfItem(atPath: daemon.socketPath)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)

        let register = try await runHostapp(["ctl", "--socket", daemon.socketPath, "cluster.register", "cluster=alpha"])
        #expect(register.exitCode == 0, "\(register.output)")
        #expect(register.output.contains("state: ready"), "\(register.output)")
        let put = try await runHostapp(["ctl", "--state-dir", dir.path, "db.put", "cluster=alpha", "key=greeting", "value={\"text\":\"hi\"}"])
        #expect(put.exitCode == 0)
        let get = try await runHostapp(["ctl", "--socket", daemon.socketPath, "-o", "json", "db.get", "cluster=alpha", "key=greeting"])
        #expect(get.exitCode == 0)
        let reply = try JSONParser.parse(get.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(reply["result"]?["value"] == ["text": "hi"])
        let missing = try await runHostapp(["ctl", "--socket", daemon.socketPath, "db.get", "cluster=nope", "key=k"])
        #expect(missing.exitCode == 1)
        #expect(missing.output.contains("cluster_not_found"))
        let unreachable = try await runHostapp(["ctl", "--socket", dir.path + "/absent.sock", "host.status"])
        #expect(unreachable.exitCode == 2)

        _ = try await daemon.request(["op": "cluster.register", "cluster": "beta"])
        daemon.process.interrupt()  // SIGINT; SIGTERM is exercised by the leak test
        #expect(try await daemon.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))
        let destroyed = daemon.logRecords.filter { $0["event"] == "destroy" }.compactMap { $0["cluster_id"]?.stringValue }
        #expect(Set(destroyed) == ["alpha", "beta"])
    }

    @Test("registering and unregistering 50 clusters returns the daemon's FDs and listeners to baseline")
    func noLeaksInDaemon() async throws {
        let dir = TemporaryDirectory("lk")
        defer { dir.remove() }
        let daemon = try HostappProcess(stateDirectory: dir.path, extra: ["--metrics-addr", "127.0.0.1:0"])
        defer { daemon.terminate() }
        let ready = try await daemon.waitUntilReady()
        // The daemon's own listeners; /proc/net/unix can momentarily omit an entry under load, so
        // listeners are checked as "nothing beyond these", which is what a leak would break.
        let ownListeners: Set<String> = ["unix:\(daemon.socketPath)", "tcp:\(ready["metrics_port"]?.stringValue ?? "")"]
        let client = try await daemon.client()
        _ = try await client.request("{\"id\":\"warm\",\"op\":\"host.status\"}", id: "warm")
        let baselineFDs = ProcessResources.openFileCount(pid: daemon.pid)
        #expect(Set(ProcessResources.listeningSockets(pid: daemon.pid)).isSubset(of: ownListeners))
        for index in 0..<50 {
            let reply = try JSONParser.parse(
                try await client.request(
                    "{\"id\":\"r\(index)\",\"op\":\"cluster.register\",\"cluster\":\"leak-\(index)\"}", id: "r\(index)"))
            #expect(reply["result"]?["state"] == "ready")
            _ = try await client.request(
                "{\"id\":\"p\(index)\",\"op\":\"db.put\",\"cluster\":\"leak-\(index)\",\"key\":\"k\",\"value\":\(index)}", id: "p\(index)")
        }
        #expect(ProcessResources.openFileCount(pid: daemon.pid) > baselineFDs)
        for index in 0..<50 {
            let reply = try JSONParser.parse(
                try await client.request(
                    "{\"id\":\"u\(index)\",\"op\":\"cluster.unregister\",\"cluster\":\"leak-\(index)\"}", id: "u\(index)"))
            #expect(reply["ok"] == true)
        }
        #expect(ProcessResources.openFileCount(pid: daemon.pid) == baselineFDs)
        #expect(Set(ProcessResources.listeningSockets(pid: daemon.pid)).isSubset(of: ownListeners))
        #expect(ProcessResources.openFiles(under: dir.path + "/clusters", pid: daemon.pid).isEmpty)
        let status = try JSONParser.parse(try await client.request("{\"id\":\"s\",\"op\":\"host.status\"}", id: "s"))
        #expect(status["result"]?["resources"] == ["cluster_actors": 0, "cluster_children": 0, "open_databases": 0, "supervised_tasks": 0])
        await client.close()
        daemon.terminate()
        #expect(try await daemon.waitForExit() == 0)
    }

    @Test("a second daemon on the same state directory is refused with a clear error")
    func stateDirectoryLock() async throws {
        let dir = TemporaryDirectory("dl")
        defer { dir.remove() }
        let first = try HostappProcess(stateDirectory: dir.path)
        defer { first.terminate() }
        _ = try await first.waitUntilReady()
        let second = try await runHostapp(["serve", "--state-dir", dir.path, "--socket", dir.path + "/other.sock"])
        #expect(second.exitCode == 1)
        #expect(second.output.contains("state_dir_locked"), "\(second.output)")
        #expect(try await first.request(["op": "host.status"])["ok"] == true)
    }

    @Test("serve --stdin answers pipelined requests and exits 0 at EOF")
    func stdinMode() throws {
        let dir = TemporaryDirectory("si")
        defer { dir.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: HostappProcess.binary)
        process.arguments = ["serve", "--stdin", "--state-dir", dir.path]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.runOrphanSafe()
        let requests = [
            "{\"id\":1,\"op\":\"cluster.register\",\"cluster\":\"s1\"}",
            "garbage",
            "{\"id\":2,\"op\":\"db.put\",\"cluster\":\"s1\",\"key\":\"k\",\"value\":true}",
            "{\"id\":3,\"op\":\"host.status\"}",
        ]
        input.fileHandleForWriting.write(Data((requests.joined(separator: "\n") + "\n").utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let replies = try String(decoding: data, as: UTF8.self).split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(replies.count == 4)
        #expect(Set(replies.map { $0["id"] ?? .null }) == [1, 2, 3, .null])
        #expect(replies.first { $0["id"] == .null }?["error"]?["code"] == "invalid_json")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/hostapp.sock"))
    }

    @Test("serve --stdin: requests pipelined after cluster.register see the cluster; the log starts with host_start")
    func stdinPipelinedRegisterThenPut() throws {
        let dir = TemporaryDirectory("sp")
        defer { dir.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: HostappProcess.binary)
        process.arguments = ["serve", "--stdin", "--state-dir", dir.path, "--log-format", "json"]
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        // Both outputs are drained while the input is written, so backpressure never stalls the daemon.
        let replies = LockedValue(Data())
        let logs = LockedValue(Data())
        let outputDrain = PipeDrain.start(output.fileHandleForReading) { data in replies.withLock { $0.append(data) } }
        let errorsDrain = PipeDrain.start(errors.fileHandleForReading) { data in logs.withLock { $0.append(data) } }
        try process.runOrphanSafe()
        let (lanes, rounds) = (8, 125)
        var requests: [String] = []
        for round in 0..<rounds {
            for lane in 0..<lanes {
                let cluster = "\"cluster\":\"e2e-\(lane)\""
                requests.append("{\"id\":\"\(lane).\(round).r\",\"op\":\"cluster.register\",\(cluster)}")
                requests.append("{\"id\":\"\(lane).\(round).p\",\"op\":\"db.put\",\(cluster),\"key\":\"k\",\"value\":\(round)}")
                requests.append("{\"id\":\"\(lane).\(round).u\",\"op\":\"cluster.unregister\",\(cluster)}")
            }
        }
        input.fileHandleForWriting.write(Data((requests.joined(separator: "\n") + "\n").utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(outputDrain.waitForEnd() && errorsDrain.waitForEnd())
        let text = String(decoding: replies.withLock { $0 }, as: UTF8.self)
        #expect(process.terminationStatus == 0)
        let parsed = try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(parsed.count == requests.count)
        let failed = parsed.filter { $0["ok"] != true }
        #expect(failed.isEmpty, "\(failed.count) failed, first: \(failed.prefix(3).map(\.jsonString))")
        let events = String(decoding: logs.withLock { $0 }, as: UTF8.self).split(separator: "\n")
            .compactMap { try? JSONParser.parse(String($0)) }
            .compactMap { $0["event"]?.stringValue }
        #expect(events.first == "host_start", "\(events.prefix(5))")
        #expect((events.firstIndex(of: "host_ready") ?? -1) > (events.firstIndex(of: "host_start") ?? Int.max))
    }

    @Test("credentials given in settings never reach logs or protocol output")
    func credentialsNeverLeak() async throws {
        let dir = TemporaryDirectory("cl")
        defer { dir.remove() }
        let secret = "Hunter2-\(UUID().uuidString)"
        let daemon = try HostappProcess(
            stateDirectory: dir.path, extra: ["--log-level", "trace", "--set", "rethinkdb.user=ops"],
            environment: ["GUILDNET_SETTING_CUSTOM__API_TOKEN": secret + "-env"])
        defer { daemon.terminate() }
        _ = try await daemon.waitUntilReady()
        var replies: [String] = []
        for request in [
            "{\"id\":\"1\",\"op\":\"cluster.register\",\"cluster\":\"c\",\"settings\":{\"rethinkdb.password\":\"\(secret)\"}}",
            "{\"id\":\"2\",\"op\":\"settings.set\",\"cluster\":\"c\",\"settings\":{\"custom.ts_client_auth\":\"\(secret)-ts\"}}",
            "{\"id\":\"3\",\"op\":\"settings.get\",\"cluster\":\"c\"}",
            "{\"id\":\"4\",\"op\":\"cluster.status\",\"cluster\":\"c\"}",
        ] {
            let client = try await daemon.client()
            let id = String(request.dropFirst(7).prefix(1))
            replies.append(String(decoding: try await client.request(request, id: id), as: UTF8.self))
            await client.close()
        }
        let settings = try JSONParser.parse(replies[2])
        #expect(settings["result"]?["settings"]?["rethinkdb.password"]?["value"] == "<redacted>")
        #expect(settings["result"]?["settings"]?["custom.api_token"]?["source"] == "env")
        #expect(settings["result"]?["settings"]?["rethinkdb.user"]?["source"] == "cli")
        daemon.terminate()
        #expect(try await daemon.waitForExit() == 0)
        for text in replies + daemon.logLines {
            #expect(!text.contains("Hunter2"), "\(text)")
        }
        #expect(daemon.logLines.count > 5)
        let settingsFile = dir.path + "/clusters/c/settings.json"
        let mode = try FileManager.default.attributesOfItem(atPath: settingsFile)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}

@Suite("migration against a live daemon")
struct MigrationLiveDaemonTests {
    @Test("migrate-db --commit and rollback-db refuse while a daemon serves the state directory")
    func refusesLiveDaemon() async throws {
        let dir = TemporaryDirectory("ml")
        defer { dir.remove() }
        let daemon = try HostappProcess(stateDirectory: dir.path)
        defer { daemon.terminate() }
        _ = try await daemon.waitUntilReady()
        let before = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        let migrate = try await runHostapp(["migrate-db", "--state-dir", dir.path, "--all", "--commit"])
        #expect(migrate.exitCode != 0)
        #expect(migrate.output.contains("state_dir_locked") || migrate.output.contains("daemon"), "\(migrate.output)")
        let rollback = try await runHostapp(["rollback-db", "--state-dir", dir.path, "--backup", dir.appending("none")])
        #expect(rollback.exitCode != 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == before)
        #expect(try await daemon.request(["op": "host.status"])["ok"] == true)
    }
}
