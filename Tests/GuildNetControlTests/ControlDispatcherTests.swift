import Foundation
import GuildNetControl
import GuildNetCore
import TestSupport
import Testing

@Suite("Control dispatcher")
struct ControlDispatcherTests {
    static let malformed: [(String, String)] = [
        ("not json at all", "invalid_json"),
        ("{\"id\":\"1\",\"op\":\"host.status\"", "invalid_json"),
        ("{\"id\":\"1\",\"op\":\"host.status\"} trailing", "invalid_json"),
        (String(repeating: "[", count: 1000), "invalid_json"),
        ("\"a string\"", "invalid_request"),
        ("42", "invalid_request"),
        ("null", "invalid_request"),
        ("{}", "missing_field"),
        ("{\"id\":\"1\",\"op\":null}", "invalid_field"),
        ("{\"id\":\"1\",\"op\":[\"db.get\"]}", "invalid_field"),
        ("{\"id\":{\"nested\":true},\"op\":\"host.status\"}", "invalid_field"),
        ("{\"id\":\"1\",\"op\":\"DB.GET\"}", "unknown_op"),
        ("{\"id\":\"1\",\"op\":\"db.get\",\"cluster\":\"a\"}", "missing_field"),
        ("{\"id\":\"1\",\"op\":\"db.get\",\"cluster\":1,\"key\":\"k\"}", "invalid_field"),
        ("{\"id\":\"1\",\"op\":\"db.get\",\"cluster\":\"a\",\"key\":\"\"}", "invalid_field"),
        ("{\"id\":\"1\",\"op\":\"db.get\",\"cluster\":\"a\",\"key\":\"\(String(repeating: "k", count: 1025))\"}", "invalid_field"),
        ("{\"id\":\"1\",\"op\":\"db.list\",\"cluster\":\"a\",\"limit\":0}", "invalid_field"),
        ("{\"id\":\"1\",\"op\":\"db.list\",\"cluster\":\"a\",\"limit\":1.5}", "invalid_field"),
        ("{\"id\":\"1\",\"op\":\"db.list\",\"cluster\":\"a\",\"limit\":\"10\"}", "invalid_field"),
        ("{\"id\":\"1\",\"op\":\"cluster.register\",\"cluster\":\"a\",\"settings\":[]}", "invalid_field"),
        ("{\"id\":\"1\",\"op\":\"cluster.register\",\"cluster\":\"\"}", "invalid_cluster_name"),
        ("{\"id\":\"1\",\"op\":\"cluster.register\",\"cluster\":\"x\",\"kubeconfig\":\"/nonexistent/kubeconfig\"}", "kubeconfig_invalid"),
        ("{\"id\":\"1\",\"op\":\"cluster.unregister\",\"cluster\":\"ghost\"}", "cluster_not_found"),
        ("{\"id\":\"1\",\"op\":\"db.get\",\"cluster\":\"ghost\",\"key\":\"k\"}", "cluster_not_found"),
        ("{\"id\":\"1\",\"op\":\"settings.set\",\"cluster\":\"a\"}", "missing_field"),
        ("{\"id\":\"1\",\"op\":\"settings.set\",\"cluster\":\"a\",\"settings\":{\"bad key!\":1}}", "invalid_setting"),
        ("{\"id\":\"1\",\"op\":\"host.status\",\"verbose\":true}", "invalid_field"),
    ]

    @Test("malformed requests get a coded error reply and the host keeps serving")
    func malformedTable() async throws {
        let dir = TemporaryDirectory("mf")
        defer { dir.remove() }
        try await withRunningHost(stateDirectory: dir.path) { host in
            let dispatcher = ControlDispatcher(host: host, logger: host.configuration.logger, requestShutdown: {})
            _ = await dispatcher.respond(to: Array("{\"op\":\"cluster.register\",\"cluster\":\"a\"}".utf8))
            for (line, code) in Self.malformed {
                let reply = try JSONParser.parse(await dispatcher.respond(to: Array(line.utf8)).reply)
                #expect(reply["ok"] == false, "\(line)")
                #expect(reply["error"]?["code"] == .string(code), "\(line) → \(reply.jsonString)")
                #expect(reply["error"]?["message"]?.stringValue?.isEmpty == false)
            }
            let ok = try JSONParser.parse(await dispatcher.respond(to: Array("{\"id\":9,\"op\":\"host.status\"}".utf8)).reply)
            #expect(ok["ok"] == true)
            #expect(ok["id"] == 9)
        }
    }

    @Test("secret settings are redacted in every reply")
    func secretsRedacted() async throws {
        let dir = TemporaryDirectory("rd")
        defer { dir.remove() }
        let secret = "pw-\(UUID().uuidString)"
        try await withRunningHost(stateDirectory: dir.path) { host in
            let dispatcher = ControlDispatcher(host: host, logger: host.configuration.logger, requestShutdown: {})
            let lines = [
                "{\"id\":1,\"op\":\"cluster.register\",\"cluster\":\"s\",\"settings\":{\"rethinkdb.password\":\"\(secret)\"}}",
                "{\"id\":2,\"op\":\"settings.get\",\"cluster\":\"s\"}",
                "{\"id\":3,\"op\":\"settings.set\",\"cluster\":\"s\",\"key\":\"custom.api_token\",\"value\":\"\(secret)\"}",
                "{\"id\":4,\"op\":\"settings.get\",\"cluster\":\"s\",\"key\":\"custom.api_token\"}",
                "{\"id\":5,\"op\":\"settings.set\",\"cluster\":\"s\",\"key\":\"rethinkdb.password\",\"value\":[\"\(secret)\"]}",
                "{\"id\":6,\"op\":\"cluster.status\",\"cluster\":\"s\"}",
            ]
            for line in lines {
                let reply = String(decoding: await dispatcher.respond(to: Array(line.utf8)).reply, as: UTF8.self)
                #expect(!reply.contains(secret), "\(reply)")
            }
            let reply = try JSONParser.parse(await dispatcher.respond(to: Array(lines[3].utf8)).reply)
            #expect(reply["result"]?["settings"]?["custom.api_token"]?["value"] == "<redacted>")
        }
    }
}

@Suite("Control protocol over a real socket")
struct ControlSocketTests {
    @Test("malformed-input table over the socket: one coded error each, and the connection stays usable")
    func malformedOverSocket() async throws {
        let dir = TemporaryDirectory("ms")
        defer { dir.remove() }
        try await withRunningHost(stateDirectory: dir.path) { host in
            let dispatcher = ControlDispatcher(host: host, logger: host.configuration.logger, requestShutdown: {})
            var configuration = ControlTransportConfiguration()
            configuration.maxLineBytes = 8192
            let server = ControlSocketServer(
                path: dir.appending("c.sock"), configuration: configuration, handler: dispatcher, logger: host.configuration.logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                let (listening, listeningContinuation) = AsyncStream<Void>.makeStream()
                group.addTask { try await server.run(onListening: { listeningContinuation.finish() }) }
                for await _ in listening {}
                let client = try await ControlClient.connect(path: dir.appending("c.sock"))
                try await client.send(#"{"id":"r","op":"cluster.register","cluster":"a"}"#)
                #expect(try JSONParser.parse(try #require(await client.receive()))["ok"] == true)
                for (line, code) in ControlDispatcherTests.malformed {
                    try await client.send(line)
                    let reply = try JSONParser.parse(try #require(await client.receive()))
                    #expect(reply["error"]?["code"] == .string(code), "\(line.prefix(80)) → \(reply.jsonString)")
                }
                try await client.send(
                    "{\"id\":\"big\",\"op\":\"db.put\",\"cluster\":\"a\",\"key\":\"k\",\"value\":\"\(String(repeating: "x", count: 20_000))\"}")
                let tooLong = try JSONParser.parse(try #require(await client.receive()))
                #expect(tooLong["error"]?["code"] == "line_too_long")
                #expect(tooLong["id"] == .null)
                try await client.send(#"{"id":"after","op":"db.put","cluster":"a","key":"k","value":1}"#)
                let after = try JSONParser.parse(try #require(await client.receive()))
                #expect(after["id"] == "after")
                #expect(after["ok"] == true)
                await client.close()
                server.shutdown()
                try await group.waitForAll()
            }
        }
    }
}
