import Foundation
import GuildNetCore
import GuildNetRuntime
import GuildNetSettings
import GuildNetStorage
import GuildNetStore
import Logging
import TestSupport
import Testing

/// A ``ClusterStorage`` whose file steps for chosen clusters wait until the test opens a gate:
/// the injected slow filesystem.
struct GatedStorage: ClusterStorage {
    let inner: PerClusterStorage
    let slow: Set<String>
    let prepareGate: Gate
    let purgeGate: Gate

    typealias Gate = OneShotGate

    var layoutName: String { inner.layoutName }

    func prepare(_ cluster: ClusterID, context: String?, kubeconfig: String?) async throws {
        if slow.contains(cluster.key) { await prepareGate.wait() }
        try await inner.prepare(cluster, context: context, kubeconfig: kubeconfig)
    }

    func makeStore(for cluster: ClusterID, environment: StoreEnvironment) -> any ClusterKeyValueStore {
        inner.makeStore(for: cluster, environment: environment)
    }

    func makeSettingsStorage(for cluster: ClusterID, logger: Logger) -> any ClusterSettingsStorage {
        inner.makeSettingsStorage(for: cluster, logger: logger)
    }

    func kubeconfig(of cluster: ClusterID) async throws -> String? { try await inner.kubeconfig(of: cluster) }

    func purge(_ cluster: ClusterID) async throws {
        if slow.contains(cluster.key) { await purgeGate.wait() }
        try await inner.purge(cluster)
    }

    func close() {}
}

@Suite("Storage isolation: one cluster's file work never blocks the host")
struct StorageIsolationTests {
    /// Registers `count` clusters and runs `requests` put/get pairs spread over them, returning the
    /// latency of every request (host lookup included) in microseconds.
    static func workload(_ host: HostActor, prefix: String, count: Int, requests: Int) async throws -> [Double] {
        for index in 0..<count {
            #expect(try await host.register(RegisterRequest(name: "\(prefix)\(index)")).state == .ready)
        }
        let clock = ContinuousClock()
        var samples: [Double] = []
        samples.reserveCapacity(requests)
        for index in 0..<requests {
            let began = clock.now
            let cluster = try await host.cluster(named: "\(prefix)\(index % count)")
            try await cluster.store.put("k\(index)", .int(Int64(index)))
            #expect(try await cluster.store.get("k\(index)")?.value == .int(Int64(index)))
            let elapsed = began.duration(to: clock.now).components
            samples.append(Double(elapsed.seconds) * 1e6 + Double(elapsed.attoseconds) / 1e12)
        }
        return samples
    }

    static func p99(_ samples: [Double]) -> Double {
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
    }

    @Test("a cluster whose preparation is held does not hold up other clusters' registrations and requests")
    func heldPreparation() async throws {
        let dir = TemporaryDirectory("iso")
        defer { dir.remove() }
        let gate = GatedStorage.Gate()
        let storage = GatedStorage(
            inner: PerClusterStorage(stateDirectory: dir.path), slow: ["slow"], prepareGate: gate, purgeGate: GatedStorage.Gate())
        try await withRunningHost(stateDirectory: dir.path, configure: { $0.storage = storage }) { host in
            let quiet = try await Self.workload(host, prefix: "quiet", count: 5, requests: 1_000)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Held until every other request below has finished: were the host waiting on
                    // this preparation, the workload could never complete and the test would time out.
                    let result = try await host.register(RegisterRequest(name: "slow"))
                    #expect(result.state == .ready)
                }
                try await eventually("the slow cluster to reach its preparation") { gate.waiting == 1 }
                #expect(try await host.cluster(named: "slow").state == .registering)
                let held = try await Self.workload(host, prefix: "busy", count: 5, requests: 1_000)
                // Printed for the record; timing is a benchmark's job, not an assertion's.
                print("p99 µs: quiet \(Self.p99(quiet)), with a held preparation \(Self.p99(held))")
                #expect(await host.list().count == 11)
                gate.open()
                try await group.waitForAll()
            }
            let slow = try await host.cluster(named: "slow")
            try await slow.store.put("after", "ok")
            #expect(try await slow.store.get("after")?.value == "ok")
        }
    }

    @Test("a purge that is held does not hold up other clusters")
    func heldPurge() async throws {
        let dir = TemporaryDirectory("isop")
        defer { dir.remove() }
        let prepareGate = GatedStorage.Gate()
        prepareGate.open()
        let purgeGate = GatedStorage.Gate()
        let storage = GatedStorage(
            inner: PerClusterStorage(stateDirectory: dir.path), slow: ["doomed"], prepareGate: prepareGate, purgeGate: purgeGate)
        try await withRunningHost(stateDirectory: dir.path, configure: { $0.storage = storage }) { host in
            _ = try await host.register(RegisterRequest(name: "doomed"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    let result = try await host.unregister("doomed", purge: true)
                    #expect(result.purged)
                }
                try await eventually("the purge to start") { purgeGate.waiting == 1 }
                let other = try await Self.workload(host, prefix: "other", count: 3, requests: 300)
                #expect(other.count == 300)
                #expect(FileManager.default.fileExists(atPath: dir.path + "/clusters/doomed"))
                purgeGate.open()
                try await group.waitForAll()
            }
            #expect(!FileManager.default.fileExists(atPath: dir.path + "/clusters/doomed"))
        }
    }
}
