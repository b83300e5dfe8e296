import Foundation

/// The metric families docs/operations.md documents (its "Metrics" table), and the metric names
/// other files use (the dashboard, the alert rules), for the tests that keep them in step.
public enum MetricsDocumentation {
    /// Family names of the rows of the Metrics table: "| `hostapp_x{labels}` | type | meaning |".
    public static func documentedFamilies() throws -> Set<String> {
        let text = try String(contentsOfFile: Repository.root + "/docs/operations.md", encoding: .utf8)
        var names: Set<String> = []
        for line in text.split(separator: "\n") where line.hasPrefix("| `hostapp_") {
            let cell = line.dropFirst(3)
            let name = cell.prefix { $0 != "{" && $0 != "`" }
            names.insert(String(name))
        }
        return names
    }

    /// Every `hostapp_…` name in `text` (PromQL expressions, a dashboard, a rules file).
    public static func metricNames(in text: String) -> Set<String> {
        var names: Set<String> = []
        var rest = text[...]
        while let start = rest.range(of: "hostapp_") {
            let tail = rest[start.lowerBound...]
            let name = tail.prefix { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
            names.insert(String(name))
            rest = tail.dropFirst(name.count)
        }
        return names
    }
}
