import GuildNetCore
import Testing

@Suite("ClusterID normalization")
struct ClusterIDTests {
    @Test(
        "safe names are their own key",
        arguments: ["prod-eu", "a", "cluster_1", "gke_my-project_europe-west1_prod", "k3s.local", "0abc", String(repeating: "x", count: 63)])
    func safeNames(name: String) throws {
        let id = try ClusterID(name: name)
        #expect(id.key == name)
        #expect(id.name == name)
    }

    @Test(
        "other names become slug plus hash",
        arguments: [
            ("Prod-EU", "prod-eu-"),
            ("gke_My-Project_europe-west1_prod", "gke-my-project-europe-west1-prod-"),
            ("arn:aws:eks:us-east-1:123456789012:cluster/prod", "arn-aws-eks-us-east-1-123456789012-clust-"),
            ("https://10.0.0.1:6443", "https-10-0-0-1-6443-"),
            ("-leading-dash", "leading-dash-"),
            ("Ünïcødé name", "n-c-d-name-"),
            (String(repeating: "y", count: 64), String(repeating: "y", count: 40) + "-"),
        ])
    func hashedNames(name: String, prefix: String) throws {
        let id = try ClusterID(name: name)
        #expect(id.key.hasPrefix(prefix), "\(id.key)")
        #expect(id.key.count == prefix.count + 10)
        #expect(ClusterID.isSafeKey(id.key))
        #expect(id.name == name)
        // Deterministic.
        #expect(try ClusterID(name: name).key == id.key)
    }

    @Test("distinct names never collapse into one key")
    func distinctNames() throws {
        let names = [
            "prod", "Prod", "PROD", "prod ", " prod", "prod/", "prod:", "p-rod", "p.rod", "p_rod", "prod-eu", "prod_eu", "Prod EU", "prod eu",
            "prod\teu".replacingOccurrences(of: "\t", with: "\u{2003}"),
        ]
        let keys = try names.map { try ClusterID(name: $0).key }
        #expect(Set(keys).count == names.count, "\(keys)")
    }

    @Test(
        "unusable names are rejected",
        arguments: ["", "!!!", "---", "...", "a\u{0}b", "line\nbreak", "tab\there", String(repeating: "z", count: 254), "🚀🚀"].map(EscapedName.init))
    func rejected(_ escaped: EscapedName) {
        let name = escaped.name
        #expect(throws: HostError.self) { try ClusterID(name: name) }
        do {
            _ = try ClusterID(name: name)
        } catch {
            #expect(error.code == .invalidClusterName)
            #expect(!error.transient)
        }
    }

    @Test("a stored key must match its name")
    func storedKey() throws {
        let id = try ClusterID(name: "Prod EU")
        #expect(try ClusterID(key: id.key, name: "Prod EU") == id)
        #expect(throws: HostError.self) { try ClusterID(key: "prod-eu", name: "Prod EU") }
    }
}

/// A test argument shown escaped, so names with control characters keep the test log one line each.
struct EscapedName: Sendable, CustomTestStringConvertible {
    let name: String
    var testDescription: String { name.debugDescription }
}
