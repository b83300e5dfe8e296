import Foundation
import GuildNetCore
import Logging
import Testing

@testable import GuildNetSettings

/// One row of the precedence table: which layers define the key, and who should win.
struct PrecedenceRow: Sendable, CustomTestStringConvertible {
    var key: String
    var layers: [SettingLayer]
    /// `nil`: no layer has the key.
    var expected: SettingLayer?

    var testDescription: String {
        "\(key) defined in [\(layers.map(\.rawValue).joined(separator: ","))] → \(expected?.rawValue ?? "none")"
    }
}

private let precedenceTable: [PrecedenceRow] = [
    // `namespace` has a schema default ("default").
    PrecedenceRow(key: "namespace", layers: [], expected: .defaults),
    PrecedenceRow(key: "namespace", layers: [.global], expected: .global),
    PrecedenceRow(key: "namespace", layers: [.cluster], expected: .cluster),
    PrecedenceRow(key: "namespace", layers: [.env], expected: .env),
    PrecedenceRow(key: "namespace", layers: [.cli], expected: .cli),
    PrecedenceRow(key: "namespace", layers: [.cluster, .global], expected: .cluster),
    PrecedenceRow(key: "namespace", layers: [.env, .global], expected: .env),
    PrecedenceRow(key: "namespace", layers: [.env, .cluster], expected: .env),
    PrecedenceRow(key: "namespace", layers: [.cli, .global], expected: .cli),
    PrecedenceRow(key: "namespace", layers: [.cli, .cluster], expected: .cli),
    PrecedenceRow(key: "namespace", layers: [.cli, .env], expected: .cli),
    PrecedenceRow(key: "namespace", layers: [.env, .cluster, .global], expected: .env),
    PrecedenceRow(key: "namespace", layers: [.cli, .cluster, .global], expected: .cli),
    PrecedenceRow(key: "namespace", layers: [.cli, .env, .global], expected: .cli),
    PrecedenceRow(key: "namespace", layers: [.cli, .env, .cluster], expected: .cli),
    PrecedenceRow(key: "namespace", layers: [.cli, .env, .cluster, .global], expected: .cli),
    // `custom.key` is unknown: no default.
    PrecedenceRow(key: "custom.key", layers: [], expected: nil),
    PrecedenceRow(key: "custom.key", layers: [.global], expected: .global),
    PrecedenceRow(key: "custom.key", layers: [.cluster, .global], expected: .cluster),
    PrecedenceRow(key: "custom.key", layers: [.env, .cluster], expected: .env),
    PrecedenceRow(key: "custom.key", layers: [.cli, .env, .cluster, .global], expected: .cli),
]

private func testCluster() throws -> ClusterID {
    try ClusterID(name: "c1")
}

private func makeSettings(
    _ stateDirectory: String,
    host: HostSettingsSources = HostSettingsSources(),
    initial: [String: JSONValue]? = nil,
    logger: Logger = Logger(label: "settings-test", factory: { _ in SwiftLogNoOpLogHandler() })
) throws -> ClusterSettings {
    ClusterSettings(cluster: try testCluster(), path: settingsPath(stateDirectory), host: host, initial: initial, logger: logger)
}

@Suite("ClusterSettings")
struct ClusterSettingsTests {
    @Test("precedence: cli > env > cluster > global > default", arguments: precedenceTable)
    func precedence(row: PrecedenceRow) async throws {
        try await withTemporaryDirectory { dir in
            func text(_ layer: SettingLayer) -> String { "from-\(layer.rawValue)" }
            let envName = HostSettingsSources.environmentName(forKey: row.key)
            var configFile: String?
            if row.layers.contains(.global) {
                let path = dir + "/host.json"
                try writeFile(path, #"{"settings": {"\#(row.key)": "\#(text(.global))"}}"#)
                configFile = path
            }
            if row.layers.contains(.cluster) {
                try FileManager.default.createDirectory(atPath: dir + "/clusters/c1", withIntermediateDirectories: true)
                try writeFile(settingsPath(dir), #"{"version": 1, "settings": {"\#(row.key)": "\#(text(.cluster))"}}"#)
            }
            let host = try HostSettingsSources.load(
                cliAssignments: row.layers.contains(.cli) ? ["\(row.key)=\(text(.cli))"] : [],
                environment: row.layers.contains(.env) ? [envName: text(.env), "UNRELATED": "x"] : ["UNRELATED": "x"],
                envFile: nil,
                configFile: configFile)
            let settings = try makeSettings(dir, host: host)
            try await settings.start()

            let effective = await settings.effective(row.key)
            #expect(effective?.layer == row.expected)
            switch row.expected {
            case nil:
                #expect(effective == nil)
                #expect(await settings.value(row.key) == nil)
            case .defaults?:
                #expect(effective?.value == SettingsSchema.defaults[row.key])
            case let layer?:
                #expect(effective?.value == .string(text(layer)))
                #expect(await settings.value(row.key) == .string(text(layer)))
            }
            let listed = await settings.effectiveAll().first { $0.key == row.key }
            #expect(listed == effective)
            await settings.stop()
        }
    }

    @Test("effectiveAll lists every key of every layer, sorted, with defaults")
    func effectiveAll() async throws {
        try await withTemporaryDirectory { dir in
            let host = HostSettingsSources(cli: ["custom.zeta": 1], env: ["custom.alpha": "a"], global: ["namespace": "g"])
            let settings = try makeSettings(dir, host: host, initial: ["custom.middle": true])
            try await settings.start()
            let all = await settings.effectiveAll()
            let keys = all.map(\.key)
            #expect(keys == keys.sorted())
            #expect(Set(keys) == Set(SettingsSchema.defaults.keys).union(["custom.zeta", "custom.alpha", "custom.middle", "namespace"]))
            #expect(all.first { $0.key == "namespace" }?.layer == .global)
            #expect(all.first { $0.key == "custom.middle" }?.layer == .cluster)
            #expect(all.first { $0.key == "rethinkdb.port" }?.value == 28015)
            await settings.stop()
        }
    }

    @Test("set writes the cluster layer; null removes a key and the lower layer shows through")
    func setAndRemove() async throws {
        try await withTemporaryDirectory { dir in
            let settings = try makeSettings(dir, host: HostSettingsSources(global: ["namespace": "global-ns"]))
            try await settings.start()
            let written = try await settings.set(["namespace": "cluster-ns", "use_port_forward": "true", "custom.x": 1])
            #expect(written.map(\.key) == ["custom.x", "namespace", "use_port_forward"])
            #expect(written.first { $0.key == "use_port_forward" }?.value == true)
            #expect(await settings.clusterLayer() == ["namespace": "cluster-ns", "use_port_forward": true, "custom.x": 1])

            let removed = try await settings.set(["namespace": nil, "custom.x": nil])
            #expect(removed == [EffectiveSetting(key: "namespace", value: "global-ns", layer: .global)])
            #expect(await settings.clusterLayer() == ["use_port_forward": true])
            #expect(try await settings.set([:]) == [])
            await settings.stop()
        }
    }

    @Test("a setting shadowed by cli/env reports the winning layer")
    func shadowedSet() async throws {
        try await withTemporaryDirectory { dir in
            let settings = try makeSettings(dir, host: HostSettingsSources(cli: ["namespace": "cli-ns"]))
            try await settings.start()
            let result = try await settings.set(["namespace": "cluster-ns"])
            #expect(result == [EffectiveSetting(key: "namespace", value: "cli-ns", layer: .cli)])
            #expect(await settings.clusterLayer()["namespace"] == "cluster-ns")
            await settings.stop()
        }
    }

    @Test("set is all-or-nothing")
    func allOrNothing() async throws {
        try await withTemporaryDirectory { dir in
            let settings = try makeSettings(dir)
            try await settings.start()
            try await settings.set(["namespace": "before"])
            let before = try readBytes(settingsPath(dir))

            let error = await asyncHostError { try await settings.set(["namespace": "after", "rethinkdb.port": "not-a-port"]) }
            #expect(error?.code == .invalidSetting)
            #expect(error?.message.contains("rethinkdb.port") == true)
            let badKey = await asyncHostError { try await settings.set(["namespace": "after", "bad key": 1]) }
            #expect(badKey?.code == .invalidSetting)

            #expect(await settings.clusterLayer() == ["namespace": "before"])
            #expect(try readBytes(settingsPath(dir)) == before)
            await settings.stop()
        }
    }

    // MARK: Persistence

    @Test("round trip: a new instance reads what the previous one wrote")
    func persistenceRoundTrip() async throws {
        try await withTemporaryDirectory { dir in
            let first = try makeSettings(dir)
            try await first.start()
            let values: [String: JSONValue] = [
                "namespace": "prod",
                "rethinkdb.port": 28016,
                "ts_routes": ["10.0.0.0/8"],
                "use_port_forward": true,
                "custom.obj": ["b": 2.5, "a": nil, "c": ["x"]],
                "api_proxy_url": "https://proxy.example/api",
            ]
            try await first.set(values)
            await first.stop()

            let second = try makeSettings(dir)
            try await second.start()
            #expect(await second.clusterLayer() == values)
            #expect(await second.effective("rethinkdb.port") == EffectiveSetting(key: "rethinkdb.port", value: 28016, layer: .cluster))
            await second.stop()

            // The format: {"version":1,"settings":{...}}, keys sorted, pretty printed.
            let text = try readText(settingsPath(dir))
            #expect(SettingsJSON.parse(text) == ["version": 1, "settings": .object(values)])
            #expect(text.contains("\n  \"settings\""))
            let order = ["api_proxy_url", "custom.obj", "namespace", "rethinkdb.port", "ts_routes", "use_port_forward"]
            let positions = order.compactMap { text.range(of: "\"\($0)\"")?.lowerBound }
            #expect(positions.count == order.count)
            #expect(positions == positions.sorted())
            let settingsKey = try #require(text.range(of: "\"settings\""))
            let versionKey = try #require(text.range(of: "\"version\""))
            #expect(settingsKey.lowerBound < versionKey.lowerBound)
            #expect(!FileManager.default.fileExists(atPath: settingsPath(dir) + ".tmp"))
        }
    }

    @Test("settings.json is mode 0600 in a 0700 directory, even when replacing a looser file")
    func fileModes() async throws {
        try await withTemporaryDirectory { dir in
            let settings = try makeSettings(dir)
            try await settings.start()
            try await settings.set(["rethinkdb.password": "pw"])
            #expect(try permissions(settingsPath(dir)) == 0o600)
            #expect(try permissions(dir + "/clusters/c1") == 0o700)
            #expect(try permissions(dir + "/clusters") == 0o700)

            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: settingsPath(dir))
            try writeFile(settingsPath(dir) + ".tmp", "stale")
            try FileManager.default.setAttributes([.posixPermissions: 0o666], ofItemAtPath: settingsPath(dir) + ".tmp")
            try await settings.set(["namespace": "x"])
            #expect(try permissions(settingsPath(dir)) == 0o600)
            #expect(!FileManager.default.fileExists(atPath: settingsPath(dir) + ".tmp"))
            await settings.stop()
        }
    }

    @Test("a missing file is an empty cluster layer and is not created by start")
    func missingFile() async throws {
        try await withTemporaryDirectory { dir in
            let settings = try makeSettings(dir)
            try await settings.start()
            #expect(await settings.clusterLayer().isEmpty)
            #expect(!FileManager.default.fileExists(atPath: settingsPath(dir)))
            let details = await settings.details()
            #expect(details["path"] == .string(settingsPath(dir)))
            #expect(details["keys"] == 0)
            await settings.stop()
        }
    }

    @Test(
        "a corrupt file fails start with settings_corrupt and is never modified",
        arguments: [
            "{not json",
            "",
            "[1, 2]",
            #"{"version": 2, "settings": {}}"#,
            #"{"version": 1, "settings": ["namespace"]}"#,
            #"{"version": 1, "settings": {"use_port_forward": "maybe"}}"#,
            #"{"version": 1, "settings": {"bad key": 1}}"#,
            #"{"version": 1, "extra": true, "settings": {}}"#,
        ])
    func corruptFile(contents: String) async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: dir + "/clusters/c1", withIntermediateDirectories: true)
            let path = settingsPath(dir)
            try writeFile(path, contents)
            let before = try readBytes(path)

            let settings = try makeSettings(dir, initial: ["namespace": "from-register"])
            let error = await asyncHostError { try await settings.start() }
            #expect(error?.code == .settingsCorrupt)
            #expect(error?.message.contains(path) == true)
            #expect(try readBytes(path) == before)

            // Writes are refused while the file is bad; a second start fails the same way.
            let writeError = await asyncHostError { try await settings.set(["namespace": "x"]) }
            #expect(writeError?.code == .settingsCorrupt)
            let again = await asyncHostError { try await settings.start() }
            #expect(again?.code == .settingsCorrupt)
            await settings.stop()
            #expect(try readBytes(path) == before)
            #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
            #expect(await settings.details()["last_error"] != nil)

            // Once an operator repairs the file, a restart succeeds and applies the initial settings.
            try writeFile(path, #"{"version": 1, "settings": {"custom.kept": true}}"#)
            try await settings.start()
            #expect(await settings.clusterLayer() == ["custom.kept": true, "namespace": "from-register"])
            await settings.stop()
        }
    }

    @Test("writes are refused before start")
    func notLoaded() async throws {
        try await withTemporaryDirectory { dir in
            let settings = try makeSettings(dir)
            let error = await asyncHostError { try await settings.set(["namespace": "x"]) }
            #expect(error?.code == .clusterNotReady)
            #expect(!FileManager.default.fileExists(atPath: settingsPath(dir)))
        }
    }

    @Test("a write failure leaves the settings unchanged")
    func writeFailure() async throws {
        try await withTemporaryDirectory { dir in
            let settings = try makeSettings(dir)
            try await settings.start()
            // The cluster directory's parent is a regular file, so the directory cannot be created.
            try writeFile(dir + "/clusters", "not a directory")
            let error = await asyncHostError { try await settings.set(["namespace": "x"]) }
            #expect(error?.code == .settingsIO)
            #expect(await settings.clusterLayer().isEmpty)
            #expect(await settings.effective("namespace")?.layer == .defaults)
            await settings.stop()
        }
    }

    @Test("concurrent writers all land")
    func concurrentWrites() async throws {
        try await withTemporaryDirectory { dir in
            let settings = try makeSettings(dir)
            try await settings.start()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<40 {
                    group.addTask { _ = try await settings.set(["custom.k\(index)": .int(Int64(index))]) }
                }
                try await group.waitForAll()
            }
            await settings.stop()
            let reread = try makeSettings(dir)
            try await reread.start()
            let layer = await reread.clusterLayer()
            #expect(layer.count == 40)
            #expect(layer["custom.k39"] == 39)
            await reread.stop()
        }
    }

    // MARK: Initial settings

    @Test("initial settings are applied on top of the file at start and persisted")
    func initialSettings() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: dir + "/clusters/c1", withIntermediateDirectories: true)
            try writeFile(
                settingsPath(dir), #"{"version": 1, "settings": {"namespace": "old", "custom.drop": 1, "custom.keep": 2}}"#)
            let settings = try makeSettings(
                dir, initial: ["namespace": "new", "custom.drop": nil, "use_port_forward": "true", "route.strategy": "Direct"])
            try await settings.start()
            let expected: [String: JSONValue] = [
                "namespace": "new", "custom.keep": 2, "use_port_forward": true, "route.strategy": "direct",
            ]
            #expect(await settings.clusterLayer() == expected)
            #expect(await settings.details()["keys"] == 4)

            // Not re-applied by a restart after an operator change.
            try await settings.set(["namespace": "operator"])
            await settings.stop()
            try await settings.start()
            #expect(await settings.clusterLayer()["namespace"] == "operator")
            await settings.stop()

            let reread = try makeSettings(dir)
            try await reread.start()
            #expect(await reread.clusterLayer()["route.strategy"] == "direct")
            await reread.stop()
        }
    }

    @Test("invalid initial settings fail start without touching the file")
    func invalidInitial() async throws {
        try await withTemporaryDirectory { dir in
            let settings = try makeSettings(dir, initial: ["rethinkdb.port": "not-a-port"])
            let error = await asyncHostError { try await settings.start() }
            #expect(error?.code == .invalidSetting)
            #expect(!FileManager.default.fileExists(atPath: settingsPath(dir)))
        }
    }

    @Test("invalid hand-built host values are dropped")
    func sanitizedHostLayers() async throws {
        try await withTemporaryDirectory { dir in
            let capture = LogCapture()
            let host = HostSettingsSources(cli: ["use_port_forward": "true", "rethinkdb.port": "abc", "gone": nil])
            let settings = try makeSettings(dir, host: host, logger: capture.logger())
            try await settings.start()
            #expect(await settings.effective("use_port_forward") == EffectiveSetting(key: "use_port_forward", value: true, layer: .cli))
            #expect(await settings.effective("rethinkdb.port")?.layer == .defaults)
            #expect(await settings.effective("gone") == nil)
            #expect(capture.text.contains("rethinkdb.port"))
            await settings.stop()
        }
    }

    // MARK: Secrets

    @Test("secrets are redacted for display and never logged")
    func secretsNeverLogged() async throws {
        try await withTemporaryDirectory { dir in
            let capture = LogCapture()
            let host = try HostSettingsSources.load(
                cliAssignments: ["custom.api_token=cli-token-value"],
                environment: ["GUILDNET_SETTING_CUSTOM__TS_AUTH_KEY": "env-authkey-value"],
                envFile: nil, configFile: nil)
            let settings = try makeSettings(
                dir, host: host, initial: ["rethinkdb.password": "initial-password-value"], logger: capture.logger())
            try await settings.start()
            let result = try await settings.set(["rethinkdb.password": "hunter2-password-value", "namespace": "prod"])

            let password = try #require(result.first { $0.key == "rethinkdb.password" })
            #expect(password.isSecret)
            #expect(password.displayValue == "<redacted>")
            #expect(password.value == "hunter2-password-value")
            #expect(await settings.value("rethinkdb.password") == "hunter2-password-value")
            for setting in await settings.effectiveAll() where setting.isSecret {
                #expect(setting.displayValue == SecretKeys.redacted, "\(setting.key)")
            }
            #expect(await settings.effective("custom.api_token")?.displayValue == SecretKeys.redacted)
            #expect(await settings.effective("custom.ts_auth_key")?.displayValue == SecretKeys.redacted)

            // A bad value for the secret key is reported without the value.
            let error = await asyncHostError { try await settings.set(["rethinkdb.password": ["hunter2-array-value"]]) }
            #expect(error?.code == .invalidSetting)
            #expect(error?.message.contains("hunter2") == false)
            await settings.stop()

            let logs = capture.text
            #expect(logs.contains("settings_updated"))
            #expect(logs.contains("rethinkdb.password"))
            for secret in ["hunter2", "initial-password-value", "cli-token-value", "env-authkey-value"] {
                #expect(!logs.contains(secret), "\(secret) leaked into logs")
            }
            let details = await settings.details()
            #expect(!String(describing: details).contains("hunter2"))
        }
    }

    @Test("settings_updated is logged at INFO with key names")
    func updateLogLine() async throws {
        try await withTemporaryDirectory { dir in
            let capture = LogCapture()
            let settings = try makeSettings(dir, logger: capture.logger())
            try await settings.start()
            try await settings.set(["namespace": "prod-value", "custom.b": 1])
            await settings.stop()
            let line = try #require(capture.all.first { $0.contains("event=settings_updated") })
            #expect(line.hasPrefix("info "))
            #expect(line.contains("keys=custom.b,namespace"))
            #expect(line.contains("cluster_id=c1"))
            #expect(!line.contains("prod-value"))
        }
    }
}
