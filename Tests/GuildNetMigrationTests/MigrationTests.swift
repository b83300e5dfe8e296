import Foundation
import GuildNetCore
import GuildNetLegacy
import GuildNetMigration
import GuildNetRuntime
import GuildNetStateDirectory
import TestSupport
import Testing

/// The store contents the standard fixture's cluster `index` must have after migration.
func expectedStore(index: Int, bulk: Int, decrypted: Bool) throws -> [String: JSONValue] {
    let fixture = LegacyFixture(clusters: fixtureClusters, bulkKeysPerCluster: bulk, masterKey: testMasterKey)
    let id = fixtureClusters[index]
    var expected: [String: JSONValue] = [:]
    for (collection, key, value) in try fixture.records(clusterIndex: index) {
        let parsed = try JSONParser.parse(value)
        switch collection {
        case "clusters": expected["cluster"] = parsed
        case "published_services": expected["published_services/" + key.dropFirst(id.count + 1)] = parsed
        case "jobs", "joblogs", "audit": expected[collection + "/" + key] = parsed
        case "credentials" where key.hasSuffix(":ts_client_auth"):
            // Decrypted or plain, the record keeps its fields with the plaintext value; one that
            // cannot be decrypted stays in the legacy DB.
            if decrypted || !fixture.encrypts(clusterIndex: index) {
                expected["credentials/ts_client_auth"] = try JSONParser.parse(
                    LegacyFixture.record(id, "cluster.ts_client_auth", LegacyFixture.tsClientAuth(id), encrypted: false))
            }
        default: break
        }
    }
    for n in 0..<bulk { expected["app/key-\(n)"] = try JSONParser.parse(LegacyFixture.bulkValue(cluster: id, n: n)) }
    return expected
}

@Suite("migrate-db")
struct MigrationTests {
    @Test("dry run prints the plan and leaves every file byte-identical")
    func dryRun() async throws {
        let state = try makeLegacyState()
        defer { state.remove() }
        let before = snapshot(state.path)
        let report = try await migrate(options(state, commit: false))
        #expect(snapshot(state.path) == before)
        #expect(report.committed == false)
        #expect(report.plan.clusters.map(\.name) == fixtureClusters.sorted())
        // 9 fixed records + 5 bulk keys per cluster.
        #expect(report.plan.clusters.allSatisfy { $0.total == 14 })
        #expect(report.plan.clusters.first?.countsByKind == ["kv": 11, "credentials": 1, "settings": 1, "kubeconfig": 1])
        #expect(report.plan.hostGlobal == LegacyFixture.hostGlobalRecords.count)
        #expect(Set(report.plan.unmapped.map { "\($0.collection)/\($0.key)" }) == Set(LegacyFixture.unmappedRecords.map { "\($0.0)/\($0.1)" }))
        let text = report.render()
        #expect(text.contains("unmapped mystery/m-1: no rule for collection mystery"))
        #expect(text.contains("credential credentials/cl:c1:kubeconfig: encrypted, will be decrypted with the master key"))
        #expect(text.contains("credential credentials/cl:c2:kubeconfig: plain"))
        #expect(report.plan.clusters.allSatisfy { $0.samples.count == 5 })
        #expect(!text.contains("tskey-client"))
    }

    @Test("commit: every cluster readable through the runtime and equal to the source; source untouched; audit logged")
    func commitReadableThroughRuntime() async throws {
        let state = try makeLegacyState()
        defer { state.remove() }
        let source = state.appending("guildnet.sqlite")
        let sourceBefore = FileManager.default.contents(atPath: source)
        let report = try await migrate(options(state, commit: true))
        #expect(report.committed)
        #expect(FileManager.default.contents(atPath: source) == sourceBefore)
        #expect(report.clusters.count == fixtureClusters.count)
        let backup = try #require(report.backupDirectory)
        #expect(try LegacyBackup.verify(directory: backup).rows == report.plan.totalRecords)
        #expect(FileManager.default.contents(atPath: backup + "/guildnet.sqlite") == sourceBefore)

        for (index, name) in fixtureClusters.enumerated() {
            let directory = try clusterDirectory(state, name)
            let kubeconfig = try #require(FileManager.default.contents(atPath: directory + "/kubeconfig"))
            #expect(String(decoding: kubeconfig, as: UTF8.self) == LegacyFixture.kubeconfig(name))
            let mode = try FileManager.default.attributesOfItem(atPath: directory + "/kubeconfig")[.posixPermissions] as? Int
            #expect(mode == 0o600)
            #expect(!FileManager.default.fileExists(atPath: directory + "/local.db.migrating"))
            _ = index
        }

        try await withRunningHost(stateDirectory: state.path) { host in
            for (index, name) in fixtureClusters.enumerated() {
                let registered = try await host.register(RegisterRequest(name: name))
                #expect(registered.state == .ready)
                let cluster = try await host.cluster(named: name)
                let items = try await cluster.store.list(prefix: "", after: nil, limit: 10_000)
                let actual = Dictionary(uniqueKeysWithValues: items.map { ($0.key, $0.value) })
                #expect(actual == (try expectedStore(index: index, bulk: 5, decrypted: true)), "cluster \(name)")
                let namespace = await cluster.settings.effective("namespace")
                #expect(namespace?.value == .string("ns-\(index)"))
                #expect(namespace?.layer == .cluster)
                let routes = await cluster.settings.effective("ts_routes")
                #expect(routes?.value == .array([.string("10.\(index).0.0/16")]))
                let auth = try await cluster.store.get("credentials/ts_client_auth")
                #expect(auth?.value["value"] == .string(LegacyFixture.tsClientAuth(name)))
                #expect(auth?.value["encrypted"] == false)
            }
        }

        let log = try #require(FileManager.default.contents(atPath: state.appending("audit/migrations.log")))
        let logText = String(decoding: log, as: UTF8.self)
        let lines = logText.split(separator: "\n")
        #expect(lines.count == 1)
        let entry = try JSONParser.parse(String(lines[0]))
        #expect(entry["result"] == .string("ok"))
        #expect(entry["operator"] == .string("tester"))
        #expect(entry["event"] == .string("migrate-db"))
        #expect(entry["host"]?.stringValue?.isEmpty == false)
        #expect(entry["command_line"]?.arrayValue?.contains(.string("--commit")) == true)
        #expect(entry["migration_id"] == .string(report.migrationID))
        #expect(entry["counts"]?["migrated"] == .int(Int64(report.plan.migratedRecords)))
        #expect(entry["checksums"]?["source_sha256"] == .string(report.backup?.sha256 ?? "-"))
        let files = entry["files"]?.arrayValue ?? []
        #expect(files.contains { $0["role"] == .string("backed_up") && $0["sha256"] == .string(report.backup?.sha256 ?? "-") })
        #expect(files.filter { $0["role"] == .string("written") && ($0["path"]?.stringValue?.hasSuffix("/local.db") ?? false) }.count == fixtureClusters.count)
        for name in fixtureClusters {
            #expect(!logText.contains(LegacyFixture.tsClientAuth(name)))
            #expect(!logText.contains("server: https://\(name)"))
        }
        let logMode = try FileManager.default.attributesOfItem(atPath: state.appending("audit/migrations.log"))[.posixPermissions] as? Int
        #expect(logMode == 0o600)
        let dirMode = try FileManager.default.attributesOfItem(atPath: state.appending("audit"))[.posixPermissions] as? Int
        #expect(dirMode == 0o700)
    }

    @Test("without the master key, credentials encrypted under another key stay in the legacy DB and are reported")
    func withoutKeyLeftInPlace() async throws {
        let state = try makeLegacyState()
        defer { state.remove() }
        let report = try await migrate(options(state, commit: true, key: false))
        let c1 = try #require(report.clusters.first { $0.name == "c1" })
        #expect(c1.credentials.map(\.handling) == [.leftInPlace, .leftInPlace])
        #expect(c1.kubeconfig == false)
        let c2 = try #require(report.clusters.first { $0.name == "c2" })
        #expect(c2.credentials.map(\.handling) == [.plain, .plain])
        let directory = try clusterDirectory(state, "c1")
        #expect(!FileManager.default.fileExists(atPath: directory + "/kubeconfig"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/kubeconfig.enc"))
        #expect(try storeContents(directory + "/local.db")["credentials/ts_client_auth"] == nil)
        #expect(report.plan.unmapped.contains { $0.key == "cl:c1:kubeconfig" && $0.reason.contains("does not decrypt under the all-zero key") })
        let text = report.render()
        #expect(text.contains("credentials/cl:c1:ts_client_auth=left_in_place"))
        #expect(text.contains("give the Go app's GUILDNET_MASTER_KEY"))
        #expect(!text.contains("tskey-client"))
        // Nothing was dropped: --prune-source would leave them too, and the source still holds them.
        let legacy = try legacyContents(state.appending("guildnet.sqlite"))
        #expect(legacy["credentials/cl:c1:kubeconfig"] != nil)
    }

    @Test("a wrong master key leaves the encrypted credentials in place; everything else migrates")
    func wrongKey() async throws {
        let state = try makeLegacyState()
        defer { state.remove() }
        var opts = options(state, commit: true)
        opts.environment["GUILDNET_MASTER_KEY"] = "not-the-fixture-key"
        let report = try await migrate(opts)
        #expect(report.clusters.first { $0.name == "c1" }?.credentials.map(\.handling) == [.leftInPlace, .leftInPlace])
        #expect(report.clusters.first { $0.name == "c2" }?.kubeconfig == true)
        #expect(report.plan.unmapped.contains { $0.key == "cl:c1:kubeconfig" && $0.reason.contains("does not decrypt under the master key given") })
        #expect(!FileManager.default.fileExists(atPath: try clusterDirectory(state, "c1") + "/kubeconfig"))
        #expect(report.render().contains("is it the Go app's GUILDNET_MASTER_KEY?"))
    }

    @Test("--master-key-file gives the key (trailing newline ignored)")
    func masterKeyFile() async throws {
        let state = try makeLegacyState()
        defer { state.remove() }
        let file = state.appending("master.key")
        try Data((testMasterKey + "\n").utf8).write(to: URL(fileURLWithPath: file))
        var opts = options(state, commit: true, key: false)
        opts.masterKeyFile = file
        let report = try await migrate(opts)
        #expect(report.clusters.first { $0.name == "c1" }?.credentials.map(\.handling) == [.decrypted, .decrypted])
        let kubeconfig = try #require(FileManager.default.contents(atPath: try clusterDirectory(state, "c1") + "/kubeconfig"))
        #expect(String(decoding: kubeconfig, as: UTF8.self) == LegacyFixture.kubeconfig("c1"))
    }

    @Test("--cluster migrates one cluster only; re-running is idempotent; the CSV adds a cluster")
    func singleClusterAndIdempotence() async throws {
        let state = try makeLegacyState()
        defer { state.remove() }
        let first = try await migrate(options(state, cluster: "c2", commit: true))
        #expect(first.clusters.map(\.name) == ["c2"])
        #expect(first.plan.otherClusters == 3 * 14)
        #expect(!FileManager.default.fileExists(atPath: try clusterDirectory(state, "c1")))
        let path = try clusterDirectory(state, "c2") + "/local.db"
        let once = try storeContents(path)
        let second = try await migrate(options(state, cluster: "c2", commit: true))
        #expect(second.clusters.first?.storeRows == first.clusters.first?.storeRows)
        #expect(try storeContents(path) == once)

        // The operator maps the unmapped `mystery/m-1` and `jobs/ghost-job` to c2.
        let csv = state.appending("map.csv")
        try Data("collection,key,cluster\nmystery,m-1,c2\njobs,ghost-job,c2\n".utf8).write(to: URL(fileURLWithPath: csv))
        var withCSV = options(state, cluster: "c2", commit: true)
        withCSV.mappingFile = csv
        let third = try await migrate(withCSV)
        #expect(third.plan.unmapped.contains { $0.key == "m-1" } == false)
        let after = try storeContents(path)
        #expect(after["mystery/m-1"] == "1")
        #expect(after["jobs/ghost-job"] == #"{"cluster_id":"no-such-cluster"}"#)
        #expect(after.count == once.count + 2)
    }

    @Test("existing per-cluster data is kept and merged")
    func mergesExisting() async throws {
        let state = try makeLegacyState()
        defer { state.remove() }
        try await withRunningHost(stateDirectory: state.path) { host in
            _ = try await host.register(RegisterRequest(name: "c1", settings: ["rethinkdb.user": .string("ops")]))
            let cluster = try await host.cluster(named: "c1")
            try await cluster.store.put("own/key", .string("kept"))
            try await cluster.store.put("app/key-0", .string("overwritten by the legacy value"))
        }
        _ = try await migrate(options(state, commit: true))
        try await withRunningHost(stateDirectory: state.path) { host in
            _ = try await host.register(RegisterRequest(name: "c1"))
            let cluster = try await host.cluster(named: "c1")
            #expect(try await cluster.store.get("own/key")?.value == .string("kept"))
            #expect(try await cluster.store.get("app/key-0")?.value == (try JSONParser.parse(LegacyFixture.bulkValue(cluster: "c1", n: 0))))
            #expect(await cluster.settings.effective("rethinkdb.user")?.value == .string("ops"))
            #expect(await cluster.settings.effective("namespace")?.value == .string("ns-0"))
        }
    }

    @Test("refuses to run while a daemon holds the state directory lock")
    func refusesWhileLocked() async throws {
        let state = try makeLegacyState()
        defer { state.remove() }
        let lock = try StateDirectoryLock(stateDirectory: state.path)
        let before = snapshot(state.path)
        await #expect {
            _ = try await migrate(options(state, commit: true))
        } throws: { error in
            guard let error = error as? HostError else { return false }
            return error.code == .stateDirLocked && error.message.contains("refusing to migrate")
        }
        #expect(snapshot(state.path) == before)
        var rollback = Migration.RollbackOptions(stateDirectory: state.path, backupDirectory: state.appending("backups/none"))
        rollback.environment = [:]
        let rollbackOptions = rollback
        await #expect {
            _ = try await runBlocking { try Migration.rollback(rollbackOptions) }
        } throws: { error in
            (error as? HostError)?.code == .stateDirLocked
        }
        withExtendedLifetime(lock) {}
        // The CLI exits with status 3 and a clear message.
        let outcome = try await runHostapp(["migrate-db", "--state-dir", state.path, "--all", "--commit"], environment: [:])
        #expect(outcome.exitCode == 3)
        #expect(outcome.output.contains("state_dir_locked"))
        withExtendedLifetime(lock) {}
    }

    @Test("migrate with --prune-source, then rollback restores the original source byte for byte")
    func rollbackRestores() async throws {
        let state = try makeLegacyState()
        defer { state.remove() }
        let source = state.appending("guildnet.sqlite")
        let original = try #require(FileManager.default.contents(atPath: source))
        var opts = options(state, commit: true)
        opts.pruneSource = true
        opts.backupDirectory = state.appending("bk")
        let report = try await migrate(opts)
        #expect(report.prunedRows == report.plan.migratedRecords)
        let remaining = try legacyContents(source)
        #expect(remaining.count == report.plan.hostGlobal + report.plan.unmappedCount)

        let outcome = try await runHostapp(
            ["rollback-db", "--state-dir", state.path, "--backup", state.appending("bk"), "--operator", "ops"], environment: [:])
        #expect(outcome.exitCode == 0, "\(outcome.output)")
        #expect(outcome.output.contains("--storage-layout legacy-global"))
        #expect(FileManager.default.contents(atPath: source) == original)
        let mode = try FileManager.default.attributesOfItem(atPath: source)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let log = String(decoding: try #require(FileManager.default.contents(atPath: state.appending("audit/migrations.log"))), as: UTF8.self)
        let entries = try log.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(entries.count == 2)
        #expect(entries[1]["event"] == .string("rollback-db"))
        #expect(entries[1]["operator"] == .string("ops"))
        #expect(entries[1]["result"] == .string("ok"))
        #expect(entries[1]["files"]?.arrayValue?.contains { $0["role"] == .string("restored") } == true)
    }

    @Test("rollback refuses a tampered backup and leaves the DB alone")
    func rollbackRefusesTampered() async throws {
        let state = try makeLegacyState()
        defer { state.remove() }
        var opts = options(state, commit: true)
        opts.backupDirectory = state.appending("bk")
        _ = try await migrate(opts)
        let copy = state.appending("bk/guildnet.sqlite")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: copy))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0]))
        try handle.close()
        let before = FileManager.default.contents(atPath: state.appending("guildnet.sqlite"))
        var rollback = Migration.RollbackOptions(stateDirectory: state.path, backupDirectory: state.appending("bk"))
        rollback.environment = [:]
        let rollbackOptions = rollback
        await #expect {
            _ = try await runBlocking { try Migration.rollback(rollbackOptions) }
        } throws: { error in
            (error as? HostError)?.code == .backupInvalid
        }
        #expect(FileManager.default.contents(atPath: state.appending("guildnet.sqlite")) == before)
        let log = String(decoding: try #require(FileManager.default.contents(atPath: state.appending("audit/migrations.log"))), as: UTF8.self)
        #expect(log.contains("\"error_code\":\"backup_invalid\""))
    }
}
