import Foundation
import GuildNetCore
import GuildNetRuntime
import GuildNetSimulators
import TestSupport
import Testing

/// A cluster's actors are freed once it is unregistered: no reference cycle keeps any child alive.
@Suite("Cluster lifetime")
struct ClusterLifetimeTests {
    /// Weak references to a cluster and each of its children, by name.
    final class Observed: Sendable {
        weak let cluster: ClusterActor?
        let children: [(name: String, object: WeakObject)]

        /// One weakly held object (immutable, so Sendable without a lock).
        final class WeakObject: Sendable {
            weak let object: (any AnyObject & Sendable)?
            init(_ object: any AnyObject & Sendable) { self.object = object }
        }

        /// - Parameter store: the cluster's store, as the object it is (an actor).
        init(_ cluster: ClusterActor, store: any AnyObject & Sendable) {
            self.cluster = cluster
            let children: [(String, any AnyObject & Sendable)] = [
                ("store", store), ("settings", cluster.settings), ("kube", cluster.kube),
                ("rethink", cluster.rethink), ("forwards", cluster.forwards), ("routes", cluster.routes),
            ]
            self.children = children.map { (name: $0.0, object: WeakObject($0.1)) }
        }

        var alive: [String] {
            (cluster == nil ? [] : ["cluster"]) + children.filter { $0.object.object != nil }.map(\.name)
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
                let observed: Observed
                do {
                    _ = try await host.register(RegisterRequest(name: "lt", kubeconfig: kubeconfig))
                    let cluster = try await host.cluster(named: "lt")
                    try await eventually("ready") { cluster.state == .ready }
                    _ = try await cluster.kube.requireClient()
                    observed = Observed(cluster, store: try #require(cluster.store as? any ClusterChild & AnyObject))
                }
                _ = try await host.unregister("lt")
                try? await eventually("every actor of the cluster freed", timeout: .seconds(10)) { observed.alive.isEmpty }
                #expect(observed.alive == [], "still alive after unregister")
            }
        }
    }
}
