import Foundation
import GuildNetCore
import Logging
import Synchronization
import TestSupport
import Testing

@testable import GuildNetStore

/// Builds a store in its own temp dir with a small budget.
struct StoreFixture {
    let dir = TemporaryDirectory("st")
    let counters = ResourceCounters()
    let logs = LogCapture()
    let budget: DatabaseBudget

    init(maxOpen: Int = 8) {
        var config = DatabaseBudgetConfiguration()
        config.maxOpenDatabases = maxOpen
        budget = DatabaseBudget(configuration: config, logger: logs.logger())
    }

    func store(_ name: String, configure: (inout StoreConfiguration) -> Void = { _ in }) throws -> ClusterStore {
        var config = StoreConfiguration()
        config.openBackoff = Backoff(initial: .milliseconds(2), cap: .milliseconds(10), jitter: 0)
        config.busyTimeout = .milliseconds(100)
        configure(&config)
        let id = try ClusterID(name: name)
        return ClusterStore(
            cluster: id, path: dir.path + "/clusters/\(id.key)/local.db", configuration: config,
            budget: budget, counters: counters, logger: logs.logger())
    }
}

@Suite("ClusterStore")
struct ClusterStoreTests {
    @Test("put, get, overwrite, delete")
    func crud() async throws {
        let fixture = StoreFixture()
        defer { fixture.dir.remove() }
        let store = try fixture.store("a")
        try await store.start()
        let first = try await store.put("k", ["n": 1])
        let second = try await store.put("k", "two")
        #expect(second.createdAt == first.createdAt)
        #expect(second.updatedAt >= first.updatedAt)
        #expect(try await store.get("k")?.value == "two")
        #expect(try await store.get("missing") == nil)
        #expect(try await store.delete("k"))
        #expect(try await !store.delete("k"))
        #expect(try await store.get("k") == nil)
        await store.stop()
        #expect(fixture.counters.snapshot.openDatabases == 0)
    }

    @Test("list by prefix, in key order, paged with after")
    func list() async throws {
        let fixture = StoreFixture()
        defer { fixture.dir.remove() }
        let store = try fixture.store("a")
        try await store.start()
        for key in ["b/3", "a/1", "b/1", "b/2", "c", "b", "b/é"] { try await store.put(key, .string(key)) }
        #expect(try await store.list(prefix: "b/", after: nil, limit: 100).map(\.key) == ["b/1", "b/2", "b/3", "b/é"])
        #expect(try await store.list(prefix: "b/", after: nil, limit: 2).map(\.key) == ["b/1", "b/2"])
        #expect(try await store.list(prefix: "b/", after: "b/2", limit: 2).map(\.key) == ["b/3", "b/é"])
        #expect(try await store.list(prefix: "", after: nil, limit: 3).map(\.key) == ["a/1", "b", "b/1"])
        #expect(try await store.count() == 7)
        await store.stop()
    }

    @Test("data survives close and reopen; the file is 0600 in a 0700 directory")
    func persistence() async throws {
        let fixture = StoreFixture()
        defer { fixture.dir.remove() }
        let store = try fixture.store("a")
        try await store.start()
        try await store.put("k", [1, 2, 3])
        await store.stop()
        let again = try fixture.store("a")
        try await again.start()
        #expect(try await again.get("k")?.value == [1, 2, 3])
        let attributes = try FileManager.default.attributesOfItem(atPath: again.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let dirAttributes = try FileManager.default.attributesOfItem(atPath: (again.path as NSString).deletingLastPathComponent)
        #expect((dirAttributes[.posixPermissions] as? Int) == 0o700)
        await again.stop()
    }

    @Test("the LRU cap closes idle handles and they reopen lazily without losing data")
    func budgetEviction() async throws {
        let fixture = StoreFixture(maxOpen: 2)
        defer { fixture.dir.remove() }
        let stores = try (0..<5).map { try fixture.store("c\($0)") }
        for (index, store) in stores.enumerated() {
            try await store.start()
            try await store.put("k", .int(Int64(index)))
        }
        #expect(await fixture.budget.openCount <= 2)
        #expect(fixture.counters.snapshot.openDatabases <= 2)
        #expect(await fixture.budget.evictionCount >= 3)
        for (index, store) in stores.enumerated() {
            #expect(try await store.get("k")?.value == .int(Int64(index)))
        }
        for store in stores { await store.stop() }
        #expect(fixture.counters.snapshot.openDatabases == 0)
        #expect(await fixture.budget.openCount == 0)
    }

    @Test("the idle sweeper closes handles unused past the TTL")
    func idleSweep() async throws {
        var config = DatabaseBudgetConfiguration()
        config.idleTTL = .milliseconds(1)
        let logs = LogCapture()
        let budget = DatabaseBudget(configuration: config, logger: logs.logger())
        let dir = TemporaryDirectory("sw")
        defer { dir.remove() }
        let counters = ResourceCounters()
        let store = ClusterStore(
            cluster: try ClusterID(name: "idle"), path: dir.path + "/local.db", configuration: StoreConfiguration(),
            budget: budget, counters: counters, logger: logs.logger())
        try await store.start()
        #expect(await store.isOpen)
        try await eventually("handle closed by the sweeper") {
            await budget.sweep()
            return await !store.isOpen
        }
        #expect(try await store.get("nothing") == nil)
        #expect(await store.isOpen)
        await store.stop()
    }

    @Test("a corrupt database fails with db_corrupt after the configured attempts and is left untouched")
    func corrupt() async throws {
        let fixture = StoreFixture()
        defer { fixture.dir.remove() }
        let store = try fixture.store("bad") { $0.openAttempts = 3 }
        try FileManager.default.createDirectory(atPath: (store.path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try garbage.write(to: URL(fileURLWithPath: store.path))
        await #expect(throws: HostError.self) { try await store.start() }
        do {
            try await store.start()
        } catch let error as HostError {
            #expect(error.code == .dbCorrupt)
        }
        #expect(fixture.logs.all.filter { $0.contains("event=db_open_retry") }.count == 4)
        #expect(try Data(contentsOf: URL(fileURLWithPath: store.path)) == garbage)
        #expect(fixture.counters.snapshot.openDatabases == 0)
        await store.stop()
    }

    @Test("a lock held by another process gives db_locked (transient), then writes succeed once it is released")
    func lockedByAnotherProcess() async throws {
        let fixture = StoreFixture()
        defer { fixture.dir.remove() }
        let store = try fixture.store("locked")
        try await store.start()
        try await store.put("before", true)

        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        sqlite.arguments = [store.path]
        let input = Pipe()
        let output = Pipe()
        sqlite.standardInput = input
        sqlite.standardOutput = output
        try sqlite.run()
        input.fileHandleForWriting.write(Data("BEGIN EXCLUSIVE;\nSELECT 'locked';\n".utf8))
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("locked") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen.append(chunk)
        }
        do {
            try await store.put("during", true)
            Issue.record("write succeeded while another process held an exclusive lock")
        } catch let error as HostError {
            #expect(error.code == .dbLocked)
            #expect(error.transient)
        }
        input.fileHandleForWriting.write(Data("COMMIT;\n.quit\n".utf8))
        sqlite.waitUntilExit()
        try await store.put("after", true)
        #expect(try await store.get("after")?.value == true)
        await store.stop()
    }
}
