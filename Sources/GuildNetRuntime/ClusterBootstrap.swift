import Foundation
import GuildNetCore
import GuildNetKube
import GuildNetSettings
import GuildNetStateDirectory
import Logging

/// Parameters of `cluster.bootstrap` / `hostapp bootstrap`.
public struct BootstrapRequest: Sendable {
    /// The `guildnet.config` join bundle.
    public var path: String
    /// The cluster name (default: the bundle's `cluster.name`).
    public var cluster: String?
    /// Only say what would be written, secrets redacted.
    public var dryRun = false
    /// Deadline of each warm-up step (Kubernetes, then RethinkDB).
    public var warmupDeadline: Duration = .seconds(15)

    public init(path: String, cluster: String? = nil, dryRun: Bool = false) {
        self.path = path
        self.cluster = cluster
        self.dryRun = dryRun
    }
}

extension HostActor {
    /// Registers a new cluster from a join bundle: its kubeconfig (stored 0600), its `cluster`,
    /// `tailscale`, `hostapp` and `ui` fields as the cluster layer; then lists namespaces and
    /// warms the RethinkDB connector, each within ``BootstrapRequest/warmupDeadline``. If any
    /// step fails the registration is rolled back completely (the cluster unregistered and its
    /// directory removed) and the error is thrown. An existing cluster or directory is refused,
    /// never touched. Dry run: the plan, secrets redacted, and nothing written.
    public nonisolated func bootstrap(_ request: BootstrapRequest) async throws -> JSONValue {
        let bundle = try JoinBundle.read(path: request.path)
        guard let name = request.cluster ?? bundle.clusterName else {
            throw HostError(.missingField, "the bundle \(request.path) has no cluster.name; pass a cluster name")
        }
        let id = try ClusterID(name: name)
        guard let kubeconfig = bundle.kubeconfig else {
            throw HostError(.configInvalid, "the bundle \(request.path) has no cluster.kubeconfig; nothing was changed")
        }
        let paths = StateDirectory(configuration.stateDirectory).cluster(id)
        if request.dryRun {
            guard case .object(var plan) = bundle.redactedPlan(cluster: name) else { return [:] }
            plan["dry_run"] = true
            plan["would_write"] = [.string(paths.kubeconfig), .string(paths.settings)]
            return .object(plan)
        }
        if (try? await cluster(named: name)) != nil || AtomicFile.exists(paths.directory) {
            throw HostError(
                .invalidRequest, "cluster \(String(reflecting: name)) already exists; bootstrap only registers new clusters (nothing was changed)")
        }
        let logger = configuration.logger
        do {
            let cluster = try await registerFromBundle(name: name, kubeconfig: kubeconfig, settings: bundle.settings)
            let client = try await cluster.kube.requireClient()
            let namespaces = try KubeAPIResource.parse("namespaces")
            _ = try await withDeadline(request.warmupDeadline, "the Kubernetes warm-up") { try await client.listAll(namespaces, namespace: nil) }
            let rethink = cluster.rethink
            let server = try await withDeadline(request.warmupDeadline, "the RethinkDB warm-up") { try await rethink.connector().warmup() }
            let state = await cluster.waitUntilSettled(timeout: configuration.startTimeout)
            logger.notice(
                "cluster bootstrapped from a join bundle",
                metadata: ["event": "cluster_bootstrap", "cluster_id": .string(id.key), "keys": .string(bundle.settings.keys.sorted().joined(separator: ","))])
            return [
                "cluster": .string(name), "cluster_id": .string(id.key), "state": .string(state.rawValue), "kubernetes": "ok",
                "rethinkdb": server, "settings": .array(bundle.settings.keys.sorted().map(JSONValue.string)),
                "warnings": .array(bundle.warnings.map(JSONValue.string)),
            ]
        } catch {
            let failure = HostError.wrapping(error, as: .internalError)
            _ = try? await unregister(name, purge: true)
            if AtomicFile.exists(paths.directory) { try? await configuration.storage.purge(id) }
            logger.warning(
                "bootstrap failed and was rolled back: \(failure.message)",
                metadata: ["event": "cluster_bootstrap_rolled_back", "cluster_id": .string(id.key), "code": .string(failure.code.rawValue)])
            throw HostError(
                failure.code, "bootstrap of \(String(reflecting: name)) failed and was rolled back (nothing left on disk): \(failure.message)",
                transient: failure.transient)
        }
    }

    /// Registers through a private temporary kubeconfig file (0600), removed before returning.
    private nonisolated func registerFromBundle(name: String, kubeconfig: String, settings: [String: JSONValue]) async throws -> ClusterActor {
        let temporary = configuration.stateDirectory + "/.bootstrap-\(UUID().uuidString).kubeconfig"
        defer { unlink(temporary) }
        do {
            try AtomicFile.write(Array(kubeconfig.utf8), to: temporary)
        } catch {
            throw HostError(.io, "cannot stage the bundle's kubeconfig: \(error.description)")
        }
        _ = try await register(RegisterRequest(name: name, kubeconfig: temporary, settings: settings))
        return try await cluster(named: name)
    }

    /// Writes a version 2 join bundle for a registered cluster (mode 0600): its kubeconfig and its
    /// cluster layer. It holds credentials, like the bundles GuildNet writes.
    public nonisolated func exportConfig(cluster name: String, to path: String) async throws -> JSONValue {
        let cluster = try await cluster(named: name)
        let kubeconfig = try await configuration.storage.kubeconfig(of: cluster.id)
        let settings = await cluster.settings.clusterLayer()
        let formatter = ISO8601DateFormatter()
        let bytes = JoinBundle.encode(clusterName: name, kubeconfig: kubeconfig, settings: settings, createdAt: formatter.string(from: Date()))
        do {
            try AtomicFile.write(bytes, to: path)
        } catch {
            throw HostError(.io, "cannot write \(path): \(error.description)")
        }
        return ["cluster": .string(name), "path": .string(path), "settings": .array(settings.keys.sorted().map(JSONValue.string))]
    }
}
