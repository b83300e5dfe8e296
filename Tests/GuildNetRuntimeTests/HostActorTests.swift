import Foundation
import GuildNetCore
import GuildNetRuntime
import Synchronization
import TestSupport
import Testing

@Suite("HostActor registry")
struct HostActorTests {
    @Test("register, get, re-register, unregister")
    func basics() async throws {
        let dir = TemporaryDirectory("ha")
        defer { dir.remove() }
        try await withRunningHost(stateDirectory: dir.path) { host in
            let first = try await host.register(RegisterRequest(name: "prod-eu"))
            #expect(first.created)
            #expect(first.state == .ready)
            let again = try await host.register(RegisterRequest(name: "prod-eu"))
            #expect(!again.created)
            #expect(again.state == .ready)
            let cluster = try await host.cluster(named: "prod-eu")
            #expect(cluster.id.key == "prod-eu")
            let result = try await host.unregister("prod-eu")
            #expect(result.cluster.key == "prod-eu")
            #expect(cluster.state == .stopped)
            await #expect(throws: HostError.self) { try await host.cluster(named: "prod-eu") }
            do {
                _ = try await host.unregister("prod-eu")
                Issue.record("second unregister succeeded")
            } catch let error as HostError {
                #expect(error.code == .clusterNotFound)
            }
            do {
                _ = try await host.register(RegisterRequest(name: "!!!"))
                Issue.record("unusable name accepted")
            } catch let error as HostError {
                #expect(error.code == .invalidClusterName)
            }
        }
    }

    @Test("64 concurrent tasks registering, getting and unregistering 8 overlapping ids stay consistent")
    func concurrentRegistry() async throws {
        let dir = TemporaryDirectory("cc")
        defer { dir.remove() }
        try await withRunningHost(stateDirectory: dir.path) { host in
            let names = (0..<8).map { "c\($0)" }
            let unexpected = Recorder<String>()
            await withTaskGroup(of: Void.self) { group in
                for task in 0..<64 {
                    group.addTask {
                        for step in 0..<12 {
                            let name = names[(task + step * 3) % names.count]
                            do {
                                switch (task + step) % 3 {
                                case 0:
                                    let result = try await host.register(RegisterRequest(name: name))
                                    // A concurrent unregister may already be stopping the cluster it registered.
                                    if ![.ready, .stopping, .stopped].contains(result.state) {
                                        unexpected.append("register \(name): \(result.state)")
                                    }
                                case 1:
                                    let cluster = try await host.cluster(named: name)
                                    _ = try await cluster.store.put("task-\(task)", .int(Int64(step)))
                                default:
                                    _ = try await host.unregister(name)
                                }
                            } catch let error as HostError {
                                let allowed: Set<ErrorCode> = [.clusterNotFound, .clusterStopping]
                                if !allowed.contains(error.code) {
                                    unexpected.append("\(name): \(error)")
                                }
                            } catch {
                                unexpected.append("\(name): \(error)")
                            }
                        }
                    }
                }
            }
            #expect(unexpected.all.isEmpty, "\(unexpected.all)")
            // Final state: every listed cluster is ready and is the only instance of its id.
            let listed = await host.list()
            #expect(Set(listed.map(\.id.key)).count == listed.count)
            for summary in listed { #expect(summary.state == .ready) }
            try await eventually("live cluster actors equal registered clusters") {
                host.counters.snapshot.clusterActors == listed.count
            }
            for summary in listed { _ = try await host.unregister(summary.id.name) }
            #expect(await host.list().isEmpty)
            do {
                try await eventually("no cluster actor, task or DB handle left") {
                    host.counters.snapshot == .init(clusterActors: 0, supervisedTasks: 0, openDatabases: 0)
                }
            } catch {
                Issue.record("leftover: \(host.counters.snapshot), budget open: \(await host.budget.openCount)")
                throw error
            }
            #expect(ProcessResources.openFiles(under: dir.path).isEmpty)
        }
    }

    @Test("a write in cluster A is never visible in B, and A's files live only under clusters/A")
    func isolation() async throws {
        let dir = TemporaryDirectory("iso")
        defer { dir.remove() }
        try await withRunningHost(stateDirectory: dir.path) { host in
            _ = try await host.register(RegisterRequest(name: "A"))
            _ = try await host.register(RegisterRequest(name: "b"))
            let a = try await host.cluster(named: "A")
            let b = try await host.cluster(named: "b")
            try await a.store.put("shared-key", "from A")
            #expect(try await b.store.get("shared-key") == nil)
            #expect(try await b.store.list(prefix: "", after: nil, limit: 10).isEmpty)
            try await b.store.put("shared-key", "from B")
            #expect(try await a.store.get("shared-key")?.value == "from A")
            #expect(a.paths.directory == dir.path + "/clusters/" + a.id.key)
            #expect(a.store.path.hasPrefix(a.paths.directory + "/"))
            #expect(a.id.key != b.id.key)
            let aFiles = try FileManager.default.subpathsOfDirectory(atPath: a.paths.directory)
            #expect(aFiles.contains("local.db"))
            let bFiles = try FileManager.default.subpathsOfDirectory(atPath: b.paths.directory)
            #expect(bFiles.contains("local.db"))
            let top = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/clusters").sorted()
            #expect(top == [a.id.key, b.id.key].sorted())
        }
    }

    @Test("a cluster that never finishes starting does not hold up another cluster")
    func slowClusterDoesNotBlock() async throws {
        let dir = TemporaryDirectory("slow")
        defer { dir.remove() }
        try await withRunningHost(
            stateDirectory: dir.path,
            configure: { config in
                config.startTimeout = .seconds(60)
                config.extraChildren = { context in context.cluster.key == "slow" ? [HangingChild()] : [] }
            }
        ) { host in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await host.register(RegisterRequest(name: "slow")) }
                try await eventually("slow cluster registering") { await host.list().contains { $0.id.key == "slow" } }
                let fast = try await host.register(RegisterRequest(name: "fast"))
                #expect(fast.state == .ready)
                let cluster = try await host.cluster(named: "fast")
                try await cluster.store.put("k", "v")
                #expect(try await cluster.store.get("k")?.value == "v")
                #expect(try await host.cluster(named: "slow").state == .starting)
                _ = try await host.unregister("slow")
                try await group.waitForAll()
            }
        }
    }

    @Test("re-registering while the previous instance is stopping waits for its teardown")
    func reRegisterDuringTeardown() async throws {
        let dir = TemporaryDirectory("rr")
        defer { dir.remove() }
        let gate = Gate()
        try await withRunningHost(
            stateDirectory: dir.path,
            configure: { config in
                config.extraChildren = { _ in [SlowStopChild(gate: gate)] }
            }
        ) { host in
            _ = try await host.register(RegisterRequest(name: "x"))
            let old = try await host.cluster(named: "x")
            try await old.store.put("kept", 1)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await host.unregister("x") }
                try await eventually("old instance stopping") { gate.waiting == 1 }
                #expect(old.state == .stopping)
                group.addTask {
                    let again = try await host.register(RegisterRequest(name: "x"))
                    #expect(again.created)
                    #expect(again.state == .ready)
                }
                await #expect(throws: HostError.self) { try await host.cluster(named: "x") }
                gate.open()
                try await group.waitForAll()
            }
            #expect(old.state == .stopped)
            let fresh = try await host.cluster(named: "x")
            #expect(fresh !== old)
            #expect(try await fresh.store.get("kept")?.value == 1)
        }
    }

    @Test("host shutdown tears every cluster down in parallel")
    func parallelShutdown() async throws {
        let dir = TemporaryDirectory("sd")
        defer { dir.remove() }
        let barrier = StopBarrier(expected: 6)
        let host = try await withRunningHost(
            stateDirectory: dir.path,
            configure: { config in
                config.extraChildren = { _ in [BarrierChild(barrier: barrier)] }
            }
        ) { host in
            for index in 0..<6 { _ = try await host.register(RegisterRequest(name: "p\(index)")) }
            return host
        }
        #expect(barrier.maxInside == 6)
        #expect(host.counters.snapshot.supervisedTasks == 0)
        #expect(await host.list().isEmpty)
    }

    @Test("registration is refused once shutdown began")
    func refusedAfterShutdown() async throws {
        let dir = TemporaryDirectory("rf")
        defer { dir.remove() }
        let host = try await withRunningHost(stateDirectory: dir.path) { host in host }
        do {
            _ = try await host.register(RegisterRequest(name: "late"))
            Issue.record("registered after shutdown")
        } catch let error as HostError {
            #expect(error.code == .hostShuttingDown)
        }
    }
}
