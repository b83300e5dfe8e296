import Foundation
import GuildNetCore
import Logging
import TestSupport
import Testing

@testable import GuildNetSettings

@Suite("Settings sync from GuildNet's files")
struct SettingsSyncTests {
    @Test("config.json < .env < host config in the global layer; origins name the file; GUILDNET_SETTING_* stays env")
    func globalLayerOrigins() async throws {
        try await withTemporaryDirectory { dir in
            let host = dir + "/host.json"
            try writeFile(host, #"{"settings": {"tailscale.hostname": "from-host-config"}, "guildnet_config": "config.json"}"#)
            try writeFile(dir + "/config.json", try readText(guildNetFixture("config.json")))
            let env = guildNetFixture("guildnet.env")
            let sources = try HostSettingsSources.load(
                cliAssignments: ["namespace=cli-ns"], environment: ["HOME": "/home/alice"], envFile: env, configFile: host)
            #expect(sources.cli == ["namespace": "cli-ns"])
            #expect(sources.env == ["rethinkdb.service": "rethinkdb-proxy"])
            #expect(sources.global["tailscale.hostname"] == "from-host-config")
            #expect(sources.globalOrigins["tailscale.hostname"] == host)
            #expect(sources.global["name"] == "guildnet")
            #expect(sources.globalOrigins["name"] == env)
            #expect(sources.global["dial_timeout_ms"] == 3000)
            #expect(sources.globalOrigins["dial_timeout_ms"] == dir + "/config.json")
            #expect(sources.files == [dir + "/config.json", env, host])
            #expect(sources.warnings.contains { $0.contains("allowlist") })
            #expect(sources.warnings.contains { $0.contains("KUBECONFIG") })

            let settings = ClusterSettings(
                cluster: try ClusterID(name: "c1"), path: settingsPath(dir), host: sources, initial: ["namespace": "cluster-ns", "org_id": "o"],
                logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
            try await settings.start()
            #expect(await settings.effective("namespace")?.origin == "cli")
            #expect(await settings.effective("rethinkdb.service")?.origin == "env")
            #expect(await settings.effective("org_id")?.origin == "cluster")
            #expect(await settings.effective("dial_timeout_ms")?.origin == "global:\(dir)/config.json")
            #expect(await settings.effective("rethinkdb.port")?.origin == "default")
            #expect(await settings.effective("tailscale.auth_key")?.displayValue == SecretKeys.redacted)
        }
    }

    @Test("the same files give the same effective settings whatever order they are written and reloaded in", arguments: 0..<8)
    func orderIndependence(seed: UInt64) async throws {
        try await withTemporaryDirectory { dir in
            var random = SeededRandom(seed: seed)
            let keys = ["name", "tailscale.hostname", "ts_login_server", "listen_local", "namespace"]
            func value(_ key: String, _ tag: String) -> String {
                key == "listen_local" ? "127.0.0.1:\(8000 + tag.count)" : "\(key)-\(tag)"
            }
            // Final contents of each file: a random subset of the keys.
            func pick() -> [String] { keys.filter { _ in Bool.random(using: &random) } }
            let jsonKeys = pick().filter { GuildNetConfigJSON.fields.values.contains($0) }
            let envKeys = pick().filter { GuildNetDotEnv.variables.values.contains($0) }
            let hostKeys = pick()
            let jsonField = Dictionary(GuildNetConfigJSON.fields.map { ($1, $0) }, uniquingKeysWith: { a, b in min(a, b) })
            let envVariable = Dictionary(GuildNetDotEnv.variables.map { ($1, $0) }, uniquingKeysWith: { a, b in min(a, b) })
            let finals: [String: String] = [
                "config.json": "{" + jsonKeys.map { "\"\(jsonField[$0] ?? $0)\": \"\(value($0, "json"))\"" }.joined(separator: ",") + "}",
                "guildnet.env": envKeys.map { "\(envVariable[$0] ?? $0)=\(value($0, "dotenv"))" }.joined(separator: "\n"),
                "host.json": "{\"settings\": {" + hostKeys.map { "\"\($0)\": \"\(value($0, "host"))\"" }.joined(separator: ",") + "}}",
            ]
            let initial = ["config.json": "{}", "guildnet.env": "", "host.json": "{}"]
            func load() throws -> HostSettingsSources {
                try HostSettingsSources.load(
                    cliAssignments: [], environment: [:], envFile: dir + "/guildnet.env", configFile: dir + "/host.json",
                    guildNetConfig: dir + "/config.json")
            }
            for (name, text) in initial { try writeFile(dir + "/" + name, text) }
            let settings = ClusterSettings(
                cluster: try ClusterID(name: "c1"), path: settingsPath(dir), host: try load(), initial: nil,
                logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
            try await settings.start()
            var order = Array(finals.keys).sorted()
            order.shuffle(using: &random)
            for name in order {
                try writeFile(dir + "/" + name, finals[name] ?? "")
                await settings.replaceHostSources(try load())
            }
            let reloaded = await settings.effectiveAll()
            let fresh = ClusterSettings(
                cluster: try ClusterID(name: "c1"), path: settingsPath(dir), host: try load(), initial: nil,
                logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
            try await fresh.start()
            #expect(reloaded == (await fresh.effectiveAll()), "order \(order)")
            for key in keys {
                let expected: String? =
                    hostKeys.contains(key)
                    ? value(key, "host") : envKeys.contains(key) ? value(key, "dotenv") : jsonKeys.contains(key) ? value(key, "json") : nil
                if let expected { #expect(await settings.value(key) == .string(expected), "\(key) order \(order)") }
            }
        }
    }

    @Test("a cluster settings.json edit is reloaded; an invalid edit is rejected and the previous layer kept")
    func clusterReload() async throws {
        try await withTemporaryDirectory { dir in
            let capture = LogCapture()
            let settings = ClusterSettings(
                cluster: try ClusterID(name: "c1"), path: settingsPath(dir), host: HostSettingsSources(), initial: ["rethinkdb.password": "old-secret"],
                logger: capture.logger())
            try await settings.start()
            let seen = LockedValue<[[String]]>([])
            await settings.onChange { keys in seen.withLock { $0.append(keys) } }
            try writeFile(settingsPath(dir), #"{"version":1,"settings":{"rethinkdb.password":"new-secret","namespace":"apps"}}"#)
            #expect(try await settings.reloadFromStorage() == ["namespace", "rethinkdb.password"])
            #expect(await settings.value("rethinkdb.password") == "new-secret")
            #expect(seen.withLock { $0 } == [["namespace", "rethinkdb.password"]])

            try writeFile(settingsPath(dir), #"{"version":1,"settings":{"rethinkdb.port":"not-a-port"}}"#)
            let error = await asyncHostError { _ = try await settings.reloadFromStorage() }
            #expect(error?.code == .settingsCorrupt)
            #expect(await settings.value("rethinkdb.password") == "new-secret")
            #expect(await settings.value("namespace") == "apps")
            #expect(capture.text.contains("settings_reload_rejected"))
            #expect(!capture.text.contains("new-secret"))
            #expect(!capture.text.contains("old-secret"))
        }
    }

    @Test("the settings child watches settings.json: a rename-and-replace edit applies without a restart")
    func clusterWatch() async throws {
        try await withTemporaryDirectory { dir in
            let settings = ClusterSettings(
                cluster: try ClusterID(name: "c1"), path: settingsPath(dir), host: HostSettingsSources(), initial: ["namespace": "before"],
                logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
            try await settings.start()
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try? await settings.run() }
                // Editors write a temporary file and rename it over the original. The watch starts a
                // moment after run() is entered, so the edit is repeated (every 60 polls) until seen.
                var polls = 0
                try await eventually("the edit applied by the watcher", timeout: .seconds(45)) {
                    if polls % 60 == 0 {
                        let edit = "{\"version\":1,\"settings\":{\"namespace\":\"after\",\"org_id\":\"o\(polls)\"}}"
                        try writeFile(settingsPath(dir) + ".edit", edit)
                        rename(settingsPath(dir) + ".edit", settingsPath(dir))
                    }
                    polls += 1
                    return await settings.value("namespace") == "after"
                }
                group.cancelAll()
            }
            #expect(await settings.value("namespace") == "after")
        }
    }
}

/// SplitMix64: deterministic randomness for property tests.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
