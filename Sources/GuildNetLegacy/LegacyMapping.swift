import GuildNetCore

/// Where one legacy record belongs: the documented inference rules of the migration, and their
/// inverse used by `--storage-layout legacy-global`.
///
/// | legacy collection | legacy key | target |
/// |---|---|---|
/// | orgs, headscales, namespaces, keys, nodes, settings | any | host-wide, stays in place |
/// | clusters | `<id>` | cluster `<id>`, key `cluster` |
/// | cluster-settings | `<id>` | cluster `<id>`'s settings (settings.json) |
/// | credentials | `cl:<id>:kubeconfig` | cluster `<id>`'s kubeconfig file (0600) |
/// | credentials | `cl:<id>:<name>` | cluster `<id>`, key `credentials/<name>` |
/// | credentials | `hs:<id>:<name>` (a headscale's, e.g. `preauth`) | host-wide, stays in place |
/// | published_services | `<id>:<service>` | cluster `<id>`, key `published_services/<service>` |
/// | jobs, joblogs, audit | `<k>`, value names cluster `<id>` | cluster `<id>`, key `<collection>/<k>` |
/// | jobs, joblogs, audit | `<k>`, value names no cluster | host-wide, stays in place |
/// | cluster-kv | `<id>/<key>` | cluster `<id>`, key `<key>` |
/// | anything else | | unmapped: listed, left in place, never guessed |
///
/// A cluster id taken from a key must also be a known cluster (a `clusters` record, or a cluster
/// given to the migration); otherwise the record is unmapped.
public enum LegacyMapping {
    public enum Target: Sendable, Equatable {
        case hostGlobal
        case clusterKey(cluster: String, key: String)
        case clusterSettings(cluster: String)
        case clusterKubeconfig(cluster: String)
        case unmapped(reason: String)

        /// The cluster this target belongs to, if any.
        public var cluster: String? {
            switch self {
            case .clusterKey(let cluster, _), .clusterSettings(let cluster), .clusterKubeconfig(let cluster): cluster
            case .hostGlobal, .unmapped: nil
            }
        }
    }

    /// JSON fields that name a record's cluster in jobs, joblogs and audit.
    public static let clusterFields = ["cluster", "cluster_id", "clusterId", "clusterID"]

    /// Applies the inference rules to one record.
    public static func infer(collection: String, key: String, value: [UInt8], knownClusters: Set<String>) -> Target {
        func known(_ id: Substring) -> String? {
            let id = String(id)
            return knownClusters.contains(id) ? id : nil
        }
        if LegacyLayout.hostGlobalCollections.contains(collection) { return .hostGlobal }
        switch collection {
        case "clusters":
            return known(key[...]).map { .clusterKey(cluster: $0, key: "cluster") } ?? .unmapped(reason: "cluster \(key) is not known")
        case "cluster-settings":
            return known(key[...]).map { .clusterSettings(cluster: $0) } ?? .unmapped(reason: "cluster \(key) is not known")
        case "credentials":
            if key.hasPrefix("hs:") { return .hostGlobal }
            let parts = key.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "cl", !parts[2].isEmpty, let cluster = known(parts[1]) else {
                return .unmapped(reason: "credential key is not cl:<known cluster>:<name>")
            }
            return parts[2] == "kubeconfig" ? .clusterKubeconfig(cluster: cluster) : .clusterKey(cluster: cluster, key: "credentials/\(parts[2])")
        case "published_services":
            let parts = key.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[1].isEmpty, let cluster = known(parts[0]) else {
                return .unmapped(reason: "published service key is not <known cluster>:<service>")
            }
            return .clusterKey(cluster: cluster, key: "published_services/\(parts[1])")
        case LegacyLayout.clusterKVCollection:
            let parts = key.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[1].isEmpty, let cluster = known(parts[0]) else {
                return .unmapped(reason: "cluster-kv key is not <known cluster>/<key>")
            }
            return .clusterKey(cluster: cluster, key: String(parts[1]))
        case _ where LegacyLayout.maybeClusterCollections.contains(collection):
            guard let named = namedCluster(in: value) else { return .hostGlobal }
            guard knownClusters.contains(named) else { return .unmapped(reason: "record names unknown cluster \(named)") }
            return .clusterKey(cluster: named, key: "\(collection)/\(key)")
        default:
            return .unmapped(reason: "no rule for collection \(collection)")
        }
    }

    /// The cluster a JSON record names in one of ``clusterFields``, if any.
    public static func namedCluster(in value: [UInt8]) -> String? {
        guard case .object(let fields)? = try? JSONParser.parse(value) else { return nil }
        for field in clusterFields {
            if case .string(let id)? = fields[field], !id.isEmpty { return id }
        }
        return nil
    }

    /// Where per-cluster key `key` of `cluster` lives in the legacy layout (inverse of ``infer``
    /// for ``Target/clusterKey(cluster:key:)``). Keys under `jobs/`, `joblogs/` and `audit/` map to
    /// records that must also name the cluster; ``LegacyLocation/requiresClusterField`` says so.
    public static func location(cluster: String, key: String) -> LegacyLocation {
        if key == "cluster" { return LegacyLocation(collection: "clusters", key: cluster) }
        if let rest = key.dropPrefix("published_services/") {
            return LegacyLocation(collection: "published_services", key: "\(cluster):\(rest)")
        }
        if let rest = key.dropPrefix("credentials/"), rest != "kubeconfig" {
            return LegacyLocation(collection: "credentials", key: "cl:\(cluster):\(rest)")
        }
        for collection in LegacyLayout.maybeClusterCollections.sorted() {
            if let rest = key.dropPrefix(collection + "/") {
                return LegacyLocation(collection: collection, key: rest, requiresClusterField: true)
            }
        }
        return LegacyLocation(collection: LegacyLayout.clusterKVCollection, key: "\(cluster)/\(key)")
    }
}

/// A (collection, key) of the legacy table.
public struct LegacyLocation: Sendable, Equatable {
    public var collection: String
    public var key: String
    /// The record belongs to the cluster only if its JSON value names it.
    public var requiresClusterField = false

    public init(collection: String, key: String, requiresClusterField: Bool = false) {
        self.collection = collection
        self.key = key
        self.requiresClusterField = requiresClusterField
    }
}

extension String {
    func dropPrefix(_ prefix: String) -> String? {
        guard hasPrefix(prefix), count > prefix.count else { return nil }
        return String(dropFirst(prefix.count))
    }
}
