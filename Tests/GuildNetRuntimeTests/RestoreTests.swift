import Foundation
import GuildNetCore
import GuildNetRuntime
import GuildNetStateDirectory
import TestSupport
import Testing

/// ``HostActor/restore(_:)`` over registration records: lazy clusters stay idle until used and
/// start once however many requests race for them; eager ones start by themselves; unregister
/// removes the record; unusable records are skipped.
@Suite("HostActor restores registrations")
struct RestoreTests {
    static func persisting(_ configuration: inout HostConfiguration) {
        configuration.persistsRegistrations = true
    }

    @Test("lazy: idle until the first request, one instance under concurrent first requests; unregister of an idle cluster")
    func lazy() async throws {
        let dir = TemporaryDirectory("restore-lazy")
        defer { dir.remove() }
        try await withRunningHost(stateDirectory: dir.path, configure: Self.persisting) { host in
            for name in ["alpha", "beta"] { _ = try await host.register(RegisterRequest(name: name, context: "ctx-\(name)")) }
            _ = try await host.cluster(named: "alpha").store.put("k", .string("v"))
        }
        let record = try #require(try AtomicFile.read(dir.path + "/clusters/alpha/registration.json"))
        #expect(ClusterRegistration.decode(record) == ClusterRegistration(name: "alpha", key: "alpha", context: "ctx-alpha"))

        try await withRunningHost(stateDirectory: dir.path, configure: Self.persisting) { host in
            #expect(await host.restore(.lazy) == RestoreSummary(restored: 2, skipped: 0))
            #expect(await host.list().map(\.state) == [.idle, .idle])
            #expect(host.counters.snapshot.clusterActors == 0)
            let instances = try await withThrowingTaskGroup(of: ObjectIdentifier.self) { group in
                for _ in 0..<20 { group.addTask { ObjectIdentifier(try await host.cluster(named: "alpha")) } }
                return try await group.reduce(into: Set<ObjectIdentifier>()) { $0.insert($1) }
            }
            #expect(instances.count == 1, "concurrent first requests start one instance")
            let alpha = try await host.cluster(named: "alpha")
            #expect(await alpha.waitUntilSettled(timeout: .seconds(30)) == .ready)
            #expect(try await alpha.store.get("k")?.value == .string("v"))
            #expect(await host.list().first { $0.id.name == "beta" }?.state == .idle)
            let result = try await host.unregister("beta")
            #expect(result.teardownSeconds == 0)
            #expect(!AtomicFile.exists(dir.path + "/clusters/beta/registration.json"))
            #expect(await host.list().map(\.id.name) == ["alpha"])
        }
    }

    @Test("eager: every restored cluster starts by itself; skipped records are reported")
    func eager() async throws {
        let dir = TemporaryDirectory("restore-eager")
        defer { dir.remove() }
        try await withRunningHost(stateDirectory: dir.path, configure: Self.persisting) { host in
            for index in 0..<12 { _ = try await host.register(RegisterRequest(name: "c\(index)")) }
        }
        try AtomicFile.write(Array("not json".utf8), to: dir.path + "/clusters/torn/registration.json")
        try AtomicFile.write(ClusterRegistration(name: "elsewhere", key: "elsewhere").encoded, to: dir.path + "/clusters/moved/registration.json")
        try await withRunningHost(stateDirectory: dir.path, configure: Self.persisting) { host in
            #expect(await host.restore(.eager) == RestoreSummary(restored: 12, skipped: 2))
            try await eventually("all restored clusters ready", timeout: .seconds(60)) {
                await host.list().allSatisfy { $0.state == .ready }
            }
            #expect(await host.list().count == 12)
            _ = try await host.unregister("c0")
        }
        try await withRunningHost(stateDirectory: dir.path, configure: Self.persisting) { host in
            #expect(await host.restore(.off) == RestoreSummary(restored: 0, skipped: 0))
            #expect(await host.list().isEmpty)
            #expect(await host.restore(.lazy) == RestoreSummary(restored: 11, skipped: 2))
        }
    }

    @Test("without persistsRegistrations nothing is recorded")
    func notPersisting() async throws {
        let dir = TemporaryDirectory("restore-none")
        defer { dir.remove() }
        try await withRunningHost(stateDirectory: dir.path) { host in
            _ = try await host.register(RegisterRequest(name: "alpha"))
        }
        #expect(!AtomicFile.exists(dir.path + "/clusters/alpha/registration.json"))
    }
}
