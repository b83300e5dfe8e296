import Foundation
import GRDB
import GuildNetCore
import GuildNetLegacy
import GuildNetRuntime
import TestSupport
import Testing

/// A legacy `guildnet.sqlite` as the Go GuildNet host app leaves it.
enum LegacyFixture {
    static let rows: [(String, String, String)] = [
        ("clusters", "c1", #"{"id":"c1","name":"Prod"}"#),
        ("clusters", "c2", #"{"id":"c2","name":"Staging"}"#),
        ("cluster-settings", "c1", #"{"name":"Prod","namespace":"apps","use_port_forward":true,"legacy_blob":{"x":1}}"#),
        (
            "credentials", "cl:c1:kubeconfig",
            #""apiVersion: v1\nkind: Config\ncurrent-context: c1\nclusters:\n- name: c1\n  cluster:\n    server: https://c1.example:6443\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c1\n  context:\n    cluster: c1\n    user: u\n""#
        ),
        ("credentials", "cl:c1:ts_client_auth", #""tskey-secret""#),
        ("published_services", "c1:web", #"{"port":80}"#),
        ("published_services", "c2:db", #"{"port":5432}"#),
        ("jobs", "j1", #"{"cluster_id":"c1","state":"done"}"#),
        ("jobs", "j2", #"{"cluster_id":"c2","state":"queued"}"#),
        ("orgs", "o1", #"{"name":"guild"}"#),
        ("settings", "global", #"{"theme":"dark"}"#),
    ]

    static func create(in stateDirectory: String) throws {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let queue = try DatabaseQueue(path: LegacyLayout.databasePath(stateDirectory: stateDirectory))
        try queue.write { db in
            try db.execute(sql: LegacyLayout.createTableSQL)
            for (collection, key, value) in rows {
                try db.execute(sql: "INSERT INTO kv(collection, key, value) VALUES (?, ?, ?)", arguments: [collection, key, Data(value.utf8)])
            }
        }
        try queue.close()
    }
}

@Suite("legacy-global layout")
struct LegacyLayoutServingTests {
    @Test("serves each cluster's legacy records through the per-cluster API, with no cross-cluster leak")
    func servesLegacyData() async throws {
        let dir = TemporaryDirectory("lg")
        defer { dir.remove() }
        try LegacyFixture.create(in: dir.path)
        let database = try LegacyDatabase(stateDirectory: dir.path)
        defer { database.close() }
        try await withRunningHost(
            stateDirectory: dir.path, configure: { $0.storage = LegacyGlobalStorage(database: database, isKubeconfig: { $0.hasPrefix("apiVersion") }) }
        ) { host in
            #expect(try await host.register(RegisterRequest(name: "c1")).state == .ready)
            _ = try await host.register(RegisterRequest(name: "c2"))
            let c1 = try await host.cluster(named: "c1")
            #expect(try await c1.store.get("cluster")?.value == ["id": "c1", "name": "Prod"])
            #expect(try await c1.store.get("published_services/web")?.value == ["port": 80])
            #expect(try await c1.store.get("published_services/db") == nil)
            #expect(try await c1.store.get("jobs/j1")?.value == ["cluster_id": "c1", "state": "done"])
            #expect(try await c1.store.get("jobs/j2") == nil)
            let keys = try await c1.store.list(prefix: "", after: nil, limit: 100).map(\.key)
            #expect(keys == ["cluster", "credentials/ts_client_auth", "jobs/j1", "published_services/web"])
            #expect(await c1.settings.effective("namespace")?.value == "apps")
            #expect(await c1.settings.effective("namespace")?.layer == .cluster)
            #expect(await c1.settings.effective("use_port_forward")?.value == true)

            try await c1.store.put("app/feature", ["on": true])
            #expect(try await c1.store.get("app/feature")?.value == ["on": true])
            let c2 = try await host.cluster(named: "c2")
            #expect(try await c2.store.get("app/feature") == nil)
            _ = try await c1.settings.set(["namespace": "ops"])
            _ = try await host.unregister("c1")
            _ = try await host.unregister("c2")
        }
        // Writes landed in the legacy table, and unknown fields of the Go record were kept.
        let queue = try DatabaseQueue(path: database.path)
        let settings = try await queue.read { db in
            try String.fetchOne(db, sql: "SELECT CAST(value AS TEXT) FROM kv WHERE collection = 'cluster-settings' AND key = 'c1'")
        }
        let parsed = try JSONParser.parse(try #require(settings))
        #expect(parsed["namespace"] == "ops")
        #expect(parsed["legacy_blob"] == ["x": 1])
        let kv = try await queue.read { db in
            try String.fetchOne(db, sql: "SELECT CAST(value AS TEXT) FROM kv WHERE collection = 'cluster-kv' AND key = 'c1/app/feature'")
        }
        #expect(kv == #"{"on":true}"#)
        try queue.close()
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/clusters/c1/local.db"))
    }
}
