import Foundation
import GuildNetCore
import TestSupport
import Testing

/// deploy/grafana/hostapp-dashboard.json and the metric names around it: every expression names
/// only families the daemon exports (documented in docs/operations.md, and registered by the
/// sources), and parses as PromQL (`promtool check rules` on the expressions as recording rules).
@Suite("dashboard and metric documentation")
struct DashboardTests {
    static let dashboardPath = Repository.root + "/deploy/grafana/hostapp-dashboard.json"

    /// Every `expr` and templating `query` string of the dashboard.
    static func expressions(_ value: JSONValue) -> [(key: String, text: String)] {
        switch value {
        case .object(let object):
            return object.sorted { $0.key < $1.key }.flatMap { key, member -> [(key: String, text: String)] in
                if key == "expr" || key == "query", case .string(let text) = member { return [(key, text)] }
                return expressions(member)
            }
        case .array(let values):
            return values.flatMap(expressions)
        default:
            return []
        }
    }

    /// `"hostapp_…"` string literals of the sources: the families the code registers.
    static func familiesInSources() throws -> Set<String> {
        let root = URL(fileURLWithPath: Repository.root + "/Sources")
        var names: Set<String> = []
        let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
        while let file = files?.nextObject() as? URL {
            guard file.pathExtension == "swift" else { continue }
            let text = try String(contentsOf: file, encoding: .utf8)
            for piece in text.components(separatedBy: "\"hostapp_").dropFirst() {
                let name = piece.prefix { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
                if piece.dropFirst(name.count).hasPrefix("\"") { names.insert("hostapp_" + name) }
            }
        }
        return names
    }

    @Test func docsListExactlyTheFamiliesTheSourcesRegister() throws {
        let documented = try MetricsDocumentation.documentedFamilies()
        let registered = try Self.familiesInSources()
        #expect(documented.count >= 30, "\(documented.sorted())")
        #expect(registered.subtracting(documented).isEmpty, "registered but undocumented: \(registered.subtracting(documented).sorted())")
        #expect(documented.subtracting(registered).isEmpty, "documented but never registered: \(documented.subtracting(registered).sorted())")
    }

    @Test func everyDashboardExpressionNamesAnExportedFamily() async throws {
        let dashboard = try JSONParser.parse(try String(contentsOfFile: Self.dashboardPath, encoding: .utf8))
        let documented = try MetricsDocumentation.documentedFamilies()
        // Grafana's datasource variable and the cluster_id variable.
        let variables = dashboard["templating"]?["list"]?.arrayValue ?? []
        #expect(variables.contains { $0["name"] == "datasource" && $0["type"] == "datasource" && $0["query"] == "prometheus" })
        #expect(variables.contains { $0["name"] == "cluster_id" && $0["type"] == "query" })
        let expressions = Self.expressions(dashboard)
        #expect(expressions.count >= 30)
        var used: Set<String> = []
        for (_, text) in expressions {
            let names = MetricsDocumentation.metricNames(in: text)
            #expect(!names.isEmpty || text == "prometheus", "an expression without a hostapp metric: \(text)")
            #expect(names.isSubset(of: documented), "\(text) names \(names.subtracting(documented).sorted()), which the daemon does not export")
            used.formUnion(names)
        }
        // The rules file, likewise.
        let rules = try String(contentsOfFile: Repository.root + "/deploy/prometheus/hostapp-rules.yml", encoding: .utf8)
        let ruleNames = MetricsDocumentation.metricNames(in: rules)
        #expect(ruleNames.isSubset(of: documented), "rules name \(ruleNames.subtracting(documented).sorted())")

        // Every panel query parses as PromQL: promtool checks them as recording rules.
        let promtool = try #require(locatePromtool(), "promtool not found: run scripts/install-test-tools.sh")
        let dir = TemporaryDirectory("dashboard-rules")
        defer { dir.remove() }
        var yaml = "groups:\n  - name: dashboard\n    rules:\n"
        for (index, (key, text)) in expressions.enumerated() where key == "expr" {
            yaml += "      - record: dashboard:expr_\(index)\n        expr: \(JSONValue.string(text).jsonString)\n"
        }
        let file = dir.appending("dashboard-rules.yml")
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await runProcess(promtool, ["check", "rules", file])
        #expect(result.exitCode == 0, "a dashboard expression is not valid PromQL: \(result.output)")
    }
}
