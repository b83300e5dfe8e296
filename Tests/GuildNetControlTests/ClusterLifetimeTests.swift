import Foundation
import GuildNetCore
import GuildNetRuntime
import GuildNetSimulators
import TestSupport
import Testing

/// A cluster's actors are freed once it is unregistered: no reference cycle keeps any child alive.
@Suite("Cluster lifetime")
struct ClusterLifetimeTests {
    /// Weak references to a cluster and each of its children.
    final class Observed: @unchecked Sendable {
        // Written once before the cluster is unregistered, then only read: no concurrent mutation.
        weak var cluster: ClusterActor?
        var children: [(String, Weak)] = []
        final class Weak {
            weak var object: AnyObject?
            init(_ object: AnyObject) { self.object = object }
        }

        var alive: [String] {
            (cluster == nil ? [] : ["cluster"]) + children.filter { $0.1.object != nil }.map(\.0)
        }
    }

    @Test("a cluster with a kubeconfig: every child is freed after unregister")
    func childrenFreed() async throws {
        try await KubeSim.withRunning { sim, endpoint in
            let dir = TemporaryDirectory("lt")
            defer { dir.remove() }
            let kubeconfig = dir.path + "/sim.kubeconfig"
            try sim.writeKubeconfig(to: kubeconfig, endpoint: endpoint)
            try await withRunningHost(stateDirectory: dir.path + "/state") { host in
                let observed = Observed()
                do {
                    _ = try await host.register(RegisterRequest(name: "lt", kubeconfig: kubeconfig))
                    let cluster = try await host.cluster(named: "lt")
                    try await eventually("ready") { cluster.state == .ready }
                    _ = try await cluster.kube.requireClient()
                    observed.cluster = cluster
                    observed.children = [
                        ("store", .init(cluster.store as AnyObject)), ("settings", .init(cluster.settings)), ("kube", .init(cluster.kube)),
                        ("rethink", .init(cluster.rethink)), ("forwards", .init(cluster.forwards)), ("routes", .init(cluster.routes)),
                    ]
                }
                _ = try await host.unregister("lt")
                try? await eventually("every actor of the cluster freed", timeout: .seconds(10)) { observed.alive.isEmpty }
                #expect(observed.alive == [], "still alive after unregister")
            }
        }
    }
}
