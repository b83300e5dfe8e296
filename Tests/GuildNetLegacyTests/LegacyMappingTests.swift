import GuildNetCore
import GuildNetLegacy
import Testing

@Suite("Legacy mapping rules")
struct LegacyMappingTests {
    static let known: Set<String> = ["c1", "c2"]

    @Test(
        "inference table",
        arguments: [
            ("orgs", "o1", "{}", LegacyMapping.Target.hostGlobal),
            ("settings", "global", "{}", .hostGlobal),
            ("nodes", "c1", "{}", .hostGlobal),
            ("clusters", "c1", "{}", .clusterKey(cluster: "c1", key: "cluster")),
            ("clusters", "c9", "{}", .unmapped(reason: "cluster c9 is not known")),
            ("cluster-settings", "c2", "{}", .clusterSettings(cluster: "c2")),
            ("credentials", "cl:c1:kubeconfig", "\"x\"", .clusterKubeconfig(cluster: "c1")),
            ("credentials", "cl:c1:ts_client_auth", "\"x\"", .clusterKey(cluster: "c1", key: "credentials/ts_client_auth")),
            ("credentials", "cl:c9:kubeconfig", "\"x\"", .unmapped(reason: "credential key is not cl:<known cluster>:<name>")),
            ("credentials", "admin", "\"x\"", .unmapped(reason: "credential key is not cl:<known cluster>:<name>")),
            ("credentials", "hs:hs-1:preauth", #"{"value":"x"}"#, .hostGlobal),
            ("published_services", "c2:web", "{}", .clusterKey(cluster: "c2", key: "published_services/web")),
            ("published_services", "web", "{}", .unmapped(reason: "published service key is not <known cluster>:<service>")),
            ("jobs", "j1", "{\"cluster_id\":\"c1\"}", .clusterKey(cluster: "c1", key: "jobs/j1")),
            ("joblogs", "l1", "{\"clusterId\":\"c2\",\"line\":1}", .clusterKey(cluster: "c2", key: "joblogs/l1")),
            ("audit", "a1", "{\"who\":\"me\"}", .hostGlobal),
            ("audit", "a2", "{\"cluster\":\"c9\"}", .unmapped(reason: "record names unknown cluster c9")),
            ("cluster-kv", "c1/app/x", "1", .clusterKey(cluster: "c1", key: "app/x")),
            ("mystery", "k", "1", .unmapped(reason: "no rule for collection mystery")),
        ])
    func inference(collection: String, key: String, value: String, expected: LegacyMapping.Target) {
        #expect(LegacyMapping.infer(collection: collection, key: key, value: Array(value.utf8), knownClusters: Self.known) == expected)
    }

    @Test(
        "location is the inverse of inference for cluster keys",
        arguments: ["cluster", "published_services/web", "credentials/ts_client_auth", "jobs/j1", "app/x", "a/b/c"])
    func inverse(key: String) {
        let location = LegacyMapping.location(cluster: "c1", key: key)
        let value = location.requiresClusterField ? "{\"cluster\":\"c1\"}" : "{}"
        let target = LegacyMapping.infer(collection: location.collection, key: location.key, value: Array(value.utf8), knownClusters: Self.known)
        #expect(target == .clusterKey(cluster: "c1", key: key))
    }
}
