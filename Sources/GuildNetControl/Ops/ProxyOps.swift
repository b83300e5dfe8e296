import Foundation
import GuildNetCore
import GuildNetRuntime
import GuildNetSettings
import GuildNetStateDirectory

/// `cluster.kubeconfig` and `proxy.rotate_token`: kubectl's access to the host proxy (``HostProxyServer``).
enum ProxyOps {
    static let all: [ControlOp] = [
        ControlOp("cluster.kubeconfig", fields: ["cluster", "path"]) { params, context in
            let path = try params.string("path")
            guard !path.isEmpty else { throw HostError(.invalidField, "field \"path\" must not be empty") }
            let proxy = try context.requireHostProxy()
            let cluster = try await context.cluster(params)
            guard let server = proxy.url(of: cluster.id.name) else {
                throw HostError(.clusterNotReady, "the host proxy is not listening yet", transient: true)
            }
            let namespace = await cluster.settings.value(.namespace)
            func quoted(_ text: String) -> String { JSONValue.string(text).jsonString }
            let name = cluster.id.name
            let yaml = [
                "apiVersion: v1", "kind: Config", "clusters:", "- name: \(quoted(name))", "  cluster:", "    server: \(quoted(server))",
                "    certificate-authority-data: \(Data(proxy.credentials.caPEM.utf8).base64EncodedString())", "users:",
                "- name: guildnet-host-proxy", "  user:", "    token: \(quoted(proxy.credentials.current))", "contexts:",
                "- name: \(quoted(name))", "  context:", "    cluster: \(quoted(name))", "    user: guildnet-host-proxy",
                "    namespace: \(quoted(namespace))", "current-context: \(quoted(name))", "",
            ].joined(separator: "\n")
            do {
                try AtomicFile.write(Array(yaml.utf8), to: path, mode: 0o600)
            } catch {
                throw HostError(.io, "cannot write the kubeconfig: \(error)")
            }
            return ["path": .string(path), "server": .string(server)]
        },
        ControlOp("proxy.rotate_token", fields: []) { _, context in
            let proxy = try context.requireHostProxy()
            try proxy.credentials.rotate()
            return ["rotated": true, "token_path": .string(proxy.credentials.tokenPath)]
        },
    ]
}

extension OpContext {
    func requireHostProxy() throws -> HostProxyServer {
        guard let hostProxy else { throw HostError(.invalidRequest, "the host proxy is not enabled; start hostapp serve with --proxy-addr") }
        return hostProxy
    }
}
