import Foundation
import GuildNetCore
import GuildNetStateDirectory
import TestSupport
import Testing

@Suite("State directory")
struct StateDirectoryTests {
    @Test("every path of the layout lives under the root")
    func layout() throws {
        let state = StateDirectory("/srv/gn")
        let paths = state.cluster(try ClusterID(name: "Prod EU"))
        #expect(state.lock == "/srv/gn/hostapp.lock")
        #expect(state.socket == "/srv/gn/hostapp.sock")
        #expect(state.legacyDatabase == "/srv/gn/guildnet.sqlite")
        #expect(state.migrationAuditLog == "/srv/gn/audit/migrations.log")
        #expect(paths.directory.hasPrefix("/srv/gn/clusters/"))
        #expect(paths.database == paths.directory + "/local.db")
        #expect(paths.settings == paths.directory + "/settings.json")
        #expect(paths.identity == paths.directory + "/cluster.json")
    }

    @Test("atomic writes create parents 0700 and files 0600, replace whole files and leave no temporary")
    func atomicWrite() throws {
        let dir = TemporaryDirectory("sd")
        defer { dir.remove() }
        let path = dir.appending("a/b/file")
        try AtomicFile.write(Array("one".utf8), to: path)
        try AtomicFile.write(Array("two".utf8), to: path)
        #expect(try AtomicFile.read(path) == Array("two".utf8))
        #expect(try AtomicFile.read(dir.appending("missing")) == nil)
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        let fileMode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        let dirMode = try FileManager.default.attributesOfItem(atPath: dir.appending("a/b"))[.posixPermissions] as? Int
        #expect(fileMode == 0o600)
        #expect(dirMode == 0o700)
        #expect(throws: FileFailure.self) { try AtomicFile.read(path, limit: 2) }
        try AtomicFile.removeTree(dir.appending("a"))
        #expect(!FileManager.default.fileExists(atPath: dir.appending("a")))
        try AtomicFile.removeTree(dir.appending("a"))  // a missing tree is not an error
    }

    @Test("settings.json round-trips and refuses documents of another shape without quoting them")
    func settingsDocument() throws {
        let values: [String: JSONValue] = ["namespace": "apps", "custom.list": ["a", "b"], "kube.qps": 5]
        let bytes = SettingsDocument.encode(values)
        #expect(try SettingsDocument.decode(bytes) == values)
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("{\n  \"settings\" : {"))
        #expect(try SettingsDocument.decode(Array(#"{"version":1}"#.utf8)) == [:])
        for (document, reason) in [
            ("[1]", "not an object"), (#"{"version":2,"settings":{}}"#, "unsupported version 2"),
            (#"{"settings":"secret-text"}"#, "not an object"), (#"{"extra":1}"#, "unknown top-level key"),
            ("{", "not valid JSON"),
        ] {
            do {
                _ = try SettingsDocument.decode(Array(document.utf8))
                Issue.record("accepted \(document)")
            } catch {
                #expect(error.reason.contains(reason))
                #expect(!error.reason.contains("secret-text"))
            }
        }
    }

    @Test("the identity record refuses a directory that belongs to another name")
    func identity() throws {
        let dir = TemporaryDirectory("id")
        defer { dir.remove() }
        let state = StateDirectory(dir.path)
        let alpha = try ClusterID(name: "alpha")
        let paths = state.cluster(alpha)
        try ClusterIdentity.check(paths, belongsTo: alpha)  // nothing recorded yet
        try ClusterIdentity(alpha, context: "ctx").write(to: paths)
        #expect(try ClusterIdentity.read(paths) == ClusterIdentity(name: "alpha", key: alpha.key, context: "ctx"))
        try ClusterIdentity.check(paths, belongsTo: alpha)
        try ClusterIdentity(name: "someone else", key: alpha.key).write(to: paths)
        #expect(throws: HostError.self) { try ClusterIdentity.check(paths, belongsTo: alpha) }
        try AtomicFile.write(Array("garbage".utf8), to: paths.identity)
        #expect(throws: HostError.self) { try ClusterIdentity.read(paths) }
    }

    @Test("the lock admits one holder at a time")
    func lock() throws {
        let dir = TemporaryDirectory("lk")
        defer { dir.remove() }
        let first = try StateDirectoryLock(stateDirectory: dir.path)
        #expect(first.path == StateDirectory(dir.path).lock)
        do {
            _ = try StateDirectoryLock(stateDirectory: dir.path)
            Issue.record("a second lock was granted")
        } catch {
            #expect(error.code == .stateDirLocked)
        }
    }
}
