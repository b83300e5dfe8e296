import Foundation
import GRDB
import GuildNetCore
import GuildNetMigration
import TestSupport

/// The `GUILDNET_MASTER_KEY` of the fixtures (shorter than 32 bytes: the Go app zero-pads it).
let testMasterKey = "fixture-master-key"

/// Cluster ids of the standard fixture: plain keys and one name that needs a slug key.
let fixtureClusters = ["c1", "c2", "Prod EU", "c4"]

/// A state directory holding the standard legacy fixture.
func makeLegacyState(bulk: Int = 5, encrypted: Bool = true) throws -> TemporaryDirectory {
    let directory = TemporaryDirectory("mig")
    try LegacyFixture(clusters: fixtureClusters, bulkKeysPerCluster: bulk, masterKey: encrypted ? testMasterKey : nil)
        .write(to: directory.appending("guildnet.sqlite"))
    return directory
}

/// Every regular file under `root` (relative path → bytes).
func snapshot(_ root: String) -> [String: Data] {
    var files: [String: Data] = [:]
    guard let enumerator = FileManager.default.enumerator(atPath: root) else { return files }
    while let relative = enumerator.nextObject() as? String {
        var isDirectory: ObjCBool = false
        let path = root + "/" + relative
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            files[relative] = FileManager.default.contents(atPath: path) ?? Data()
        }
    }
    return files
}

func options(_ state: TemporaryDirectory, cluster: String? = nil, commit: Bool, key: Bool = true) -> MigrationOptions {
    var options = MigrationOptions(stateDirectory: state.path, cluster: cluster, commit: commit)
    options.quiet()
    options.operatorName = "tester"
    options.commandLine = ["hostapp", "migrate-db", "--state-dir", state.path, commit ? "--commit" : "--dry-run"]
    options.environment = ["USER": "nobody"]
    if key { options.environment["GUILDNET_MASTER_KEY"] = testMasterKey }
    return options
}

func migrate(_ options: MigrationOptions) async throws -> MigrationReport {
    try await runBlocking { try Migration.run(options) }
}

/// Every (key, value) of a per-cluster DB, read directly.
func storeContents(_ path: String) throws -> [String: String] {
    var configuration = Configuration()
    configuration.readonly = true
    let queue = try DatabaseQueue(path: path, configuration: configuration)
    defer { try? queue.close() }
    return try queue.read { db in
        var contents: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT key, value FROM kv") {
            let key: String = row[0]
            let value: String = row[1]
            contents[key] = value
        }
        return contents
    }
}

/// Every (collection, key) → value of a legacy DB.
func legacyContents(_ path: String) throws -> [String: [UInt8]] {
    var configuration = Configuration()
    configuration.readonly = true
    let queue = try DatabaseQueue(path: path, configuration: configuration)
    defer { try? queue.close() }
    return try queue.read { db in
        var contents: [String: [UInt8]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT collection, key, value FROM kv") {
            let collection: String = row[0]
            let key: String = row[1]
            let value: Data = row[2]
            contents[collection + "/" + key] = [UInt8](value)
        }
        return contents
    }
}

func clusterDirectory(_ state: TemporaryDirectory, _ name: String) throws -> String {
    state.path + "/clusters/" + (try ClusterID(name: name)).key
}
