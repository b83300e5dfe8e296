import GuildNetCore
import GuildNetLegacy
import GuildNetMigration
import Testing

@Suite("Mapping CSV and precedence")
struct MappingTests {
    @Test("parses header, quotes, escaped quotes, CRLF and blank lines")
    func parsing() throws {
        let text = "collection,key,cluster\r\njobs,j1,c1\r\n\r\n\"cluster-kv\",\"a,b\",\"c2\"\n\"audit\",\"say \"\"hi\"\"\",c1\nmystery,\"multi\nline\",c3"
        let mapping = try MappingCSV.parse(text)
        #expect(mapping.entries.map(\.key) == ["j1", "a,b", "say \"hi\"", "multi\nline"])
        #expect(mapping.cluster(collection: "jobs", key: "j1") == "c1")
        #expect(mapping.cluster(collection: "cluster-kv", key: "a,b") == "c2")
        #expect(mapping.cluster(collection: "audit", key: "say \"hi\"") == "c1")
        #expect(mapping.cluster(collection: "mystery", key: "multi\nline") == "c3")
        #expect(mapping.entries.last?.line == 6)
        #expect(mapping.clusters == ["c1", "c2", "c3"])
    }

    @Test("header is optional")
    func noHeader() throws {
        let mapping = try MappingCSV.parse("jobs,j1,c1\n")
        #expect(mapping.entries.count == 1)
    }

    @Test(
        "rejects malformed files with mapping_invalid",
        arguments: [
            "jobs,j1\n", "jobs,j1,c1,extra\n", "jobs,,c1\n", "jobs,\"j1,c1\n", "jobs,j\"1,c1\n", "jobs,\"j1\"x,c1\n",
            "jobs,j1,\u{7}bad\n", "jobs,j1,c1\njobs,j1,c2\n",
        ].map(EscapedCSV.init))
    func rejects(_ escaped: EscapedCSV) {
        let text = escaped.text
        #expect {
            _ = try MappingCSV.parse(text)
        } throws: { error in
            (error as? HostError)?.code == .mappingInvalid
        }
    }

    @Test(
        "the CSV wins over inference",
        arguments: [
            // (collection, key, value, csv cluster or nil, expected)
            ("jobs", "j1", "{\"cluster_id\":\"c1\"}", "c2", LegacyMapping.Target.clusterKey(cluster: "c2", key: "jobs/j1")),
            ("jobs", "j1", "{\"cluster_id\":\"c1\"}", nil, .clusterKey(cluster: "c1", key: "jobs/j1")),
            ("audit", "a1", "{}", "c1", .clusterKey(cluster: "c1", key: "audit/a1")),
            ("mystery", "m", "1", "c2", .clusterKey(cluster: "c2", key: "mystery/m")),
            ("mystery", "m", "1", nil, .unmapped(reason: "no rule for collection mystery")),
            ("credentials", "cl:c1:kubeconfig", "\"x\"", "c1", .clusterKubeconfig(cluster: "c1")),
            ("credentials", "cl:c1:kubeconfig", "\"x\"", "c2", .clusterKey(cluster: "c2", key: "credentials/cl:c1:kubeconfig")),
            ("settings", "global", "{}", "c1", .clusterKey(cluster: "c1", key: "settings/global")),
            ("published_services", "c9:web", "{}", "c9", .clusterKey(cluster: "c9", key: "published_services/web")),
        ] as [(String, String, String, String?, LegacyMapping.Target)])
    func precedence(collection: String, key: String, value: String, csvCluster: String?, expected: LegacyMapping.Target) throws {
        var text = "collection,key,cluster\n"
        if let csvCluster { text += "\(collection),\(key),\(csvCluster)\n" }
        let mapping = try MappingCSV.parse(text)
        let resolver = RecordResolver(knownClusters: Set(["c1", "c2"]).union(mapping.clusters), mapping: mapping)
        #expect(resolver.resolve(collection: collection, key: key, value: Array(value.utf8)) == expected)
    }
}

/// A CSV test argument shown escaped, so the test log stays one line per case.
struct EscapedCSV: Sendable, CustomTestStringConvertible {
    let text: String
    var testDescription: String { text.debugDescription }
}
