import Foundation
import GRDB
import GuildNetCore
import GuildNetLegacy

/// Builds a realistic legacy `guildnet.sqlite` (every collection of the Go app, several clusters,
/// plain and encrypted credentials, host-wide and unmapped records). Used by the migration tests
/// and `hostapp-migration-bench`; never by the daemon.
public struct LegacyFixture: Sendable {
    /// Cluster ids (legacy keys of `clusters`).
    public var clusters: [String]
    /// Extra `cluster-kv` keys per cluster (`app/key-<n>`).
    public var bulkKeysPerCluster: Int
    /// Credentials of every other cluster are encrypted under this `GUILDNET_MASTER_KEY` string
    /// (when set), with the Go app's key derivation.
    public var masterKey: String?

    public init(clusters: [String], bulkKeysPerCluster: Int = 3, masterKey: String? = nil) {
        self.clusters = clusters
        self.bulkKeysPerCluster = bulkKeysPerCluster
        self.masterKey = masterKey
    }

    /// Host-wide records every fixture holds (they stay in place).
    public static let hostGlobalRecords: [(String, String, String)] = [
        ("orgs", "org-1", #"{"name":"Guild"}"#),
        ("headscales", "hs-1", #"{"url":"https://hs.example"}"#),
        ("namespaces", "ns-1", #"{"name":"team"}"#),
        ("keys", "k-1", #"{"fingerprint":"ab:cd"}"#),
        ("nodes", "node-1", #"{"ip":"100.64.0.1"}"#),
        ("settings", "tailscale", #"{"login_server":"https://hs.example"}"#),
        ("settings", "database", #"{"path":"guildnet.sqlite"}"#),
        ("settings", "global", #"{"theme":"dark"}"#),
        ("audit", "host-1", #"{"who":"admin","what":"login"}"#),
        ("jobs", "host-job", #"{"kind":"gc"}"#),
    ]

    /// Records no rule maps (they stay in place and are listed).
    public static let unmappedRecords: [(String, String, String)] = [
        ("mystery", "m-1", "1"),
        ("credentials", "admin", #""s3cret""#),
        ("published_services", "orphan", "{}"),
        ("jobs", "ghost-job", #"{"cluster_id":"no-such-cluster"}"#),
    ]

    /// The plain kubeconfig text of `cluster`: one context with a token user (the API server is fictitious).
    public static func kubeconfig(_ cluster: String) -> String {
        let host = String(cluster.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
        return """
            apiVersion: v1
            kind: Config
            current-context: "\(cluster)"
            clusters:
            - name: "\(cluster)"
              cluster:
                server: https://\(host).example:6443
            users:
            - name: "\(cluster)-user"
              user:
                token: "fixture-token-\(host)"
            contexts:
            - name: "\(cluster)"
              context:
                cluster: "\(cluster)"
                user: "\(cluster)-user"

            """
    }

    public static func tsClientAuth(_ cluster: String) -> String { "tskey-client-\(cluster)" }

    /// Whether the fixture encrypts `cluster`'s credentials.
    public func encrypts(clusterIndex: Int) -> Bool { masterKey != nil && clusterIndex % 2 == 0 }

    /// Every record of one cluster, in a deterministic order.
    public func records(clusterIndex index: Int) throws -> [(String, String, String)] {
        let id = clusters[index]
        var records: [(String, String, String)] = [
            ("clusters", id, JSONValue.object(["id": .string(id), "name": .string("Cluster \(id)")]).jsonString),
            (
                "cluster-settings", id,
                JSONValue.object([
                    "name": .string("Cluster \(id)"), "namespace": .string("ns-\(index)"),
                    "api_proxy_url": .string("https://proxy-\(index).example"), "api_proxy_force_http": .bool(false),
                    "use_port_forward": .bool(index % 2 == 1), "ts_routes": .array([.string("10.\(index % 250).0.0/16")]),
                    "disable_api_proxy": .null,
                ]).jsonString
            ),
            ("published_services", "\(id):web", #"{"port":80}"#),
            ("published_services", "\(id):api", #"{"port":8080}"#),
            ("jobs", "job-\(index)", JSONValue.object(["cluster_id": .string(id), "kind": .string("deploy")]).jsonString),
            ("joblogs", "log-\(index)", JSONValue.object(["clusterId": .string(id), "line": .string("started")]).jsonString),
            ("audit", "audit-\(index)", JSONValue.object(["cluster": .string(id), "what": .string("register")]).jsonString),
        ]
        let kubeconfig = Self.kubeconfig(id)
        let auth = Self.tsClientAuth(id)
        if encrypts(clusterIndex: index), let masterKey {
            let key = GoCredential.MasterKey(string: masterKey)
            records.append(
                ("credentials", "cl:\(id):kubeconfig", Self.record(id, "cluster.kubeconfig", try GoCredential.encrypt(kubeconfig, key: key), encrypted: true)))
            records.append(
                ("credentials", "cl:\(id):ts_client_auth", Self.record(id, "cluster.ts_client_auth", try GoCredential.encrypt(auth, key: key), encrypted: true))
            )
        } else {
            // The Go app's bootstrap path stores only the value; its other writers the full record.
            records.append(("credentials", "cl:\(id):kubeconfig", JSONValue.object(["value": .string(kubeconfig)]).jsonString))
            records.append(("credentials", "cl:\(id):ts_client_auth", Self.record(id, "cluster.ts_client_auth", auth, encrypted: false)))
        }
        return records
    }

    /// A full Go credential record of cluster `id` (fixed `rotatedAt`, so fixtures are deterministic).
    public static func record(_ id: String, _ kind: String, _ value: String, encrypted: Bool?) -> String {
        var fields: [String: JSONValue] = [
            "id": .string("cred-\(id)-\(kind)"), "scopeType": .string("cluster"), "scopeId": .string(id), "kind": .string(kind),
            "value": .string(value), "rotatedAt": .string("2026-01-01T00:00:00Z"),
        ]
        if let encrypted { fields["encrypted"] = .bool(encrypted) }
        return JSONValue.object(fields).jsonString
    }

    /// `<id>/app/key-<n>` bulk value text.
    public static func bulkValue(cluster: String, n: Int) -> String {
        #"{"cluster":"\#(cluster)","n":\#(n),"payload":"value-\#(n)-abcdefghijklmnopqrstuvwxyz"}"#
    }

    /// Writes the fixture to `path` (which must not exist), in one transaction.
    public func write(to path: String) throws {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        try queue.write { db in
            try db.execute(sql: LegacyLayout.createTableSQL)
            let insert = try db.makeStatement(sql: "INSERT INTO kv(collection, key, value) VALUES (?, ?, ?)")
            func add(_ record: (String, String, String)) throws {
                try insert.execute(arguments: [record.0, record.1, Data(record.2.utf8)])
            }
            for record in Self.hostGlobalRecords { try add(record) }
            for record in Self.unmappedRecords { try add(record) }
            for index in clusters.indices {
                for record in try records(clusterIndex: index) { try add(record) }
                let id = clusters[index]
                for n in 0..<bulkKeysPerCluster {
                    try add((LegacyLayout.clusterKVCollection, "\(id)/app/key-\(n)", Self.bulkValue(cluster: id, n: n)))
                }
            }
        }
    }
}
