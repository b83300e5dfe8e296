import GuildNetCore
import GuildNetKube
import GuildNetRethink
import GuildNetSettings

/// Finds a cluster's RethinkDB for each new connection:
///
/// 1. `rethinkdb.address` (`host:port`; cli/env/cluster/global layers, usual precedence) when set;
/// 2. otherwise the Kubernetes Service `rethinkdb.service` (default `rethinkdb`) in
///    `rethinkdb.namespace` (default: the cluster's `namespace` setting, then `default`), read
///    through the cluster's own client: its load-balancer ingress IP or hostname when it has one,
///    else its `clusterIP` (reachable over the cluster's tailnet routes); the port is the Service
///    port named `driver` (RethinkDB's chart), else the one equal to `rethinkdb.port` (default
///    28015), else the only port;
/// 3. otherwise `rethink_not_configured`.
struct RethinkDiscovery: Sendable {
    let settings: ClusterSettings
    let kube: ClusterKube

    func resolve() async throws -> RethinkAddress {
        let values = await settings.snapshot()
        if let text = values[.rethinkAddress] {
            return try RethinkAddress(parsing: text)
        }
        let client: KubeClient
        do {
            client = try await kube.requireClient()
        } catch {
            throw HostError(
                .rethinkNotConfigured,
                "no RethinkDB address: set rethinkdb.address, or register the cluster with a kubeconfig so the Service can be discovered")
        }
        let service = values[.rethinkService]
        let namespace = values[.rethinkNamespace] ?? values[.namespace]
        let wantedPort = Int64(values[.rethinkPort])
        let object: JSONValue
        do {
            object = try await client.get(.services, namespace: namespace, name: service)
        } catch let error as HostError where error.code == .k8sNotFound {
            throw HostError(.rethinkNotConfigured, "no Service \(namespace)/\(service) to discover RethinkDB from; set rethinkdb.address or rethinkdb.service")
        }
        return try Self.address(fromService: object, wantedPort: wantedPort, name: "\(namespace)/\(service)")
    }

    /// The address a Service object advertises (see the type's rules).
    static func address(fromService object: JSONValue, wantedPort: Int64, name: String) throws -> RethinkAddress {
        let spec = object["spec"]
        var host: String?
        if case .array(let ingress)? = object["status"]?["loadBalancer"]?["ingress"], let first = ingress.first {
            host = first["ip"]?.stringValue ?? first["hostname"]?.stringValue
        }
        if host == nil, let clusterIP = spec?["clusterIP"]?.stringValue, clusterIP != "None", !clusterIP.isEmpty {
            host = clusterIP
        }
        guard let host else {
            throw HostError(.rethinkNotConfigured, "Service \(name) has neither a load-balancer address nor a clusterIP")
        }
        guard case .array(let ports)? = spec?["ports"], !ports.isEmpty else {
            throw HostError(.rethinkNotConfigured, "Service \(name) declares no ports")
        }
        let chosen: JSONValue? =
            ports.first { $0["name"]?.stringValue == "driver" }
            ?? ports.first { $0["port"]?.intValue == wantedPort }
            ?? (ports.count == 1 ? ports[0] : nil)
        guard let port = chosen?["port"]?.intValue, (1...65_535).contains(port) else {
            throw HostError(.rethinkNotConfigured, "Service \(name) has no port named driver or numbered \(wantedPort)")
        }
        return RethinkAddress(host: host, port: Int(port))
    }
}
