import Foundation
import GuildNetCore

/// A kubeconfig resolved to one context: the connection facts the client is built from, and the
/// same context rendered as a self-contained document (certificates and keys inlined) to store.
///
/// A registration resolves the operator's file once (``load(path:context:)``) and hands both forms
/// on: the text to the cluster's storage, the ``config`` to the cluster's Kubernetes child. A
/// stored kubeconfig is read back with ``parse(stored:)`` only when a cluster starts without one
/// in memory (after a restart of the daemon or in the legacy layout).
public struct ResolvedKubeconfig: Sendable, Equatable {
    public var config: KubeClusterConfig
    /// The resolved context as kubeconfig YAML, holding only that context.
    public var yaml: String

    /// Loads the kubeconfig at `path` (a file, or a `:`-separated list merged as kubectl does) and
    /// resolves `context` (nil: its current context).
    /// - Throws: `kubeconfig_invalid` naming the file or field; never quoting credentials.
    public static func load(path: String, context: String?) throws(HostError) -> ResolvedKubeconfig {
        do {
            let document = path.contains(":") ? try KubeconfigLoader.load(list: path) : try KubeconfigLoader.load(path: path)
            let config = try KubeClusterConfig.resolve(document, context: context)
            return ResolvedKubeconfig(config: config, yaml: try KubeconfigLoader.renderYAML(config.renderedDocument()))
        } catch {
            throw HostError.wrapping(error, as: .kubeconfigInvalid)
        }
    }

    /// Resolves a stored, self-contained kubeconfig (its current context).
    /// - Throws: `kubeconfig_invalid`.
    public static func parse(stored text: String) throws(HostError) -> KubeClusterConfig {
        do {
            let document = try KubeconfigLoader.parse(Data(text.utf8), source: "the cluster's kubeconfig")
            return try KubeClusterConfig.resolve(document, context: nil)
        } catch {
            throw HostError.wrapping(error, as: .kubeconfigInvalid)
        }
    }
}
