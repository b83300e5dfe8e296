import Foundation
import GuildNetCore
import GuildNetMigration
import TestSupport
import Testing

@Suite("migrate-db crash safety")
struct CrashTests {
    @Test("SIGKILL at each crash point leaves the source intact, serves no half-written DB, and a re-run converges", arguments: CrashPoint.allCases)
    func crashAndConverge(point: CrashPoint) async throws {
        let reference = try makeLegacyState(bulk: 40)
        defer { reference.remove() }
        _ = try await migrate(options(reference, commit: true))

        let state = try makeLegacyState(bulk: 40)
        defer { state.remove() }
        let source = state.appending("guildnet.sqlite")
        let original = try #require(FileManager.default.contents(atPath: source))
        let arguments = ["migrate-db", "--state-dir", state.path, "--all", "--commit", "--operator", "crash-test"]
        let environment = ["GUILDNET_MASTER_KEY": testMasterKey]

        let crashed = try await runHostapp(arguments, environment: environment.merging([CrashPoint.environmentVariable: point.rawValue]) { $1 })
        #expect(crashed.signaled, "\(point.rawValue): \(crashed.output)")
        #expect(crashed.exitCode == SIGKILL)
        #expect(FileManager.default.contents(atPath: source) == original)

        // The first cluster written ("Prod EU" sorts first): before its rename, no local.db exists;
        // after it, a complete one does.
        let first = try clusterDirectory(state, fixtureClusters.sorted()[0])
        switch point {
        case .afterBackup:
            #expect(!FileManager.default.fileExists(atPath: state.appending("clusters")))
        case .midCluster, .beforeRename:
            #expect(!FileManager.default.fileExists(atPath: first + "/local.db"))
        case .afterRename:
            #expect(try storeContents(first + "/local.db") == (try storeContents(try clusterDirectory(reference, fixtureClusters.sorted()[0]) + "/local.db")))
        }

        let rerun = try await runHostapp(arguments, environment: environment)
        #expect(rerun.exitCode == 0, "\(rerun.output)")
        #expect(FileManager.default.contents(atPath: source) == original)
        for name in fixtureClusters {
            let directory = try clusterDirectory(state, name)
            let expected = try storeContents(try clusterDirectory(reference, name) + "/local.db")
            let actual = try storeContents(directory + "/local.db")
            #expect(actual == expected, "cluster \(name) after crash at \(point.rawValue)")
            // 7 store records (cluster, 2 services, job, log, audit, ts_client_auth) + 40 bulk keys.
            let expectedRows = 47
            #expect(actual.count == expectedRows, "no loss, no duplicates")
            let referenceDirectory = try clusterDirectory(reference, name)
            for file in ["kubeconfig", "settings.json"] {
                let actualBytes: Data? = FileManager.default.contents(atPath: directory + "/" + file)
                let expectedBytes: Data? = FileManager.default.contents(atPath: referenceDirectory + "/" + file)
                #expect(actualBytes == expectedBytes, "\(file) of \(name)")
            }
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".migrating") || $0.hasSuffix(".tmp") }
            #expect(leftovers.isEmpty, "\(leftovers)")
        }
        // The audit log holds the successful re-run (the killed run could not write its line).
        let log = String(decoding: try #require(FileManager.default.contents(atPath: state.appending("audit/migrations.log"))), as: UTF8.self)
        let entries = try log.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        #expect(entries.last?["result"] == .string("ok"))
        #expect(entries.last?["operator"] == .string("crash-test"))
    }
}
