import Foundation
import GuildNetCore
import GuildNetKube
import GuildNetLegacy

/// Filesystem work around a cluster's directory: identity record, kubeconfig copy, purge.
enum ClusterFiles {
    struct Identity: Codable {
        var name: String
        var key: String
        var context: String?
    }

    /// Resolves `context` of the kubeconfig at `path` (a file, or a `:`-separated list merged as
    /// kubectl does) into a self-contained kubeconfig holding only that context.
    /// - Throws: `kubeconfig_invalid` naming the file or field; never quoting credentials.
    static func resolvedKubeconfig(path: String, context: String?) throws(HostError) -> String {
        do {
            let document = path.contains(":") ? try KubeconfigLoader.load(list: path) : try KubeconfigLoader.load(path: path)
            let resolved = try KubeClusterConfig.resolve(document, context: context)
            return try KubeconfigLoader.renderYAML(resolved.renderedDocument())
        } catch {
            throw HostError.wrapping(error, as: .kubeconfigInvalid)
        }
    }

    /// Creates `clusters/<id>/` (0700), checks the identity record against the name (so two names
    /// never share a directory, even across restarts), and writes the resolved kubeconfig (0600).
    /// A broken kubeconfig is refused before anything is written.
    static func prepare(paths: ClusterPaths, cluster: ClusterID, kubeconfig: String?, context: String?) throws(HostError) {
        let fm = FileManager.default
        var resolved: String?
        if let kubeconfig { resolved = try resolvedKubeconfig(path: kubeconfig, context: context) }
        do {
            try fm.createDirectory(atPath: paths.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw HostError(.io, "cannot create \(paths.directory): \(error.localizedDescription)")
        }
        if let data = fm.contents(atPath: paths.identity) {
            guard let identity = try? JSONDecoder().decode(Identity.self, from: data) else {
                throw HostError(.io, "\(paths.identity) is not a valid identity record; move it aside to reuse this directory")
            }
            guard identity.name == cluster.name else {
                throw HostError(
                    .clusterIDCollision,
                    "directory \(paths.directory) belongs to cluster \(String(reflecting: identity.name)), not \(String(reflecting: cluster.name))")
            }
        }
        if let resolved {
            try writeAtomically(Data(resolved.utf8), to: paths.kubeconfig, mode: 0o600)
        }
        let identity = Identity(name: cluster.name, key: cluster.key, context: context)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? encoder.encode(identity) else {
            throw HostError(.internalError, "cannot encode identity record")
        }
        try writeAtomically(data, to: paths.identity, mode: 0o600)
    }

    /// Legacy layout: the resolved kubeconfig goes into `credentials` as `cl:<id>:kubeconfig`, as the Go app kept it.
    static func storeLegacyKubeconfig(from path: String, context: String?, cluster: ClusterID, database: LegacyDatabase) throws {
        try database.storeKubeconfig(try resolvedKubeconfig(path: path, context: context), cluster: cluster.key)
    }

    /// Deletes the cluster's directory (after teardown, when the operator asked for `purge`).
    static func purge(paths: ClusterPaths) throws(HostError) {
        do {
            try FileManager.default.removeItem(atPath: paths.directory)
        } catch {
            throw HostError(.io, "cannot remove \(paths.directory): \(error.localizedDescription)")
        }
    }

    /// Writes `data` to a temporary file with `mode`, syncs it and renames it over `path`.
    static func writeAtomically(_ data: Data, to path: String, mode: mode_t) throws(HostError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw HostError(.io, "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let ok = data.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count, let base = buffer.baseAddress {
                let written = write(fd, base + offset, buffer.count - offset)
                if written <= 0 { return false }
                offset += written
            }
            return fsync(fd) == 0
        }
        fchmod(fd, mode)
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw HostError(.io, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
