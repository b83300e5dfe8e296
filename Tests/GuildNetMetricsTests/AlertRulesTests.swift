import Foundation
import TestSupport
import Testing

/// deploy/prometheus/hostapp-rules.yml: valid for `promtool check rules`, and every alert has its
/// own `promtool test rules` file that makes it fire and keeps it silent.
@Suite("alert rules")
struct AlertRulesTests {
    static let rules = Repository.root + "/deploy/prometheus/hostapp-rules.yml"
    static let testsDirectory = Repository.root + "/deploy/prometheus/tests"

    /// The alert names of the rules file, in order.
    static func alertNames() throws -> [String] {
        let text = try String(contentsOfFile: rules, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("- alert:") else { return nil }
            return trimmed.dropFirst("- alert:".count).trimmingCharacters(in: .whitespaces)
        }
    }

    @Test func promtoolCheckRulesAcceptsTheRulesFile() async throws {
        let promtool = try #require(locatePromtool(), "promtool not found: run scripts/install-test-tools.sh")
        let names = try Self.alertNames()
        #expect(names.count >= 10, "\(names)")
        let result = try await runProcess(promtool, ["check", "rules", Self.rules])
        #expect(result.exitCode == 0, "promtool check rules: \(result.output)")
        #expect(result.output.contains("SUCCESS: \(names.count) rules found"), "\(result.output)")
    }

    @Test func everyAlertHasAUnitTestThatFiresItAndKeepsItSilent() async throws {
        let promtool = try #require(locatePromtool(), "promtool not found: run scripts/install-test-tools.sh")
        let names = try Self.alertNames()
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.testsDirectory).filter { $0.hasSuffix(".test.yml") }
        #expect(Set(files) == Set(names.map { $0 + ".test.yml" }), "one test file per alert: \(files.sorted()) vs \(names)")
        for name in names {
            let path = Self.testsDirectory + "/\(name).test.yml"
            let text = try String(contentsOfFile: path, encoding: .utf8)
            // Every case tests this alert only; at least one expects it to fire, one expects silence.
            let tested = Set(
                text.split(separator: "\n").compactMap { line -> String? in
                    let trimmed = line.trimmingCharacters(in: .whitespaces)
                    guard trimmed.hasPrefix("alertname:") else { return nil }
                    return trimmed.dropFirst("alertname:".count).trimmingCharacters(in: .whitespaces)
                })
            #expect(tested == [name], "\(name).test.yml tests \(tested)")
            #expect(text.contains("exp_alerts: []"), "\(name): no case where the alert stays silent")
            #expect(text.contains("- exp_labels:"), "\(name): no case where the alert fires")
            let result = try await runProcess(promtool, ["test", "rules", path])
            #expect(result.exitCode == 0, "promtool test rules \(name): \(result.output)")
        }
    }

    @Test func everyAlertHasARunbookEntry() throws {
        let operations = try String(contentsOfFile: Repository.root + "/docs/operations.md", encoding: .utf8)
        for name in try Self.alertNames() {
            #expect(operations.contains("#### \(name)"), "docs/operations.md has no runbook entry for \(name)")
        }
    }
}
