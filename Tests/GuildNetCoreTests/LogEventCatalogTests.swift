import Foundation
import GuildNetCore
import Logging
import TestSupport
import Testing

/// The one table of log event codes: every code the sources log is in it, errors have hints, the
/// docs list the same table, and the JSON handler writes the documented fields.
@Suite("log event catalog")
struct LogEventCatalogTests {
    /// Event codes written as literals in the sources: `"event": "x"`, `"event": .string("x")`,
    /// `metadata["event"] = "x"`, `event = "x"`, plus the ``LifecycleEvent`` raw values.
    static func codesInSources() throws -> Set<String> {
        let patterns = try [
            #""event"\s*:\s*(?:\.string\()?"([a-z_]+)""#, #"\["event"\]\s*=\s*(?:\.string\()?"([a-z_]+)""#,
            #"\bevent\s*=\s*"([a-z_]+)""#,
        ].map { try NSRegularExpression(pattern: $0) }
        var codes = Set(LifecycleEvent.allCases.map(\.rawValue))
        let files = FileManager.default.enumerator(at: URL(fileURLWithPath: Repository.root + "/Sources"), includingPropertiesForKeys: nil)
        while let file = files?.nextObject() as? URL {
            guard file.pathExtension == "swift", file.lastPathComponent != "LogEventCatalog.swift" else { continue }
            let text = try String(contentsOf: file, encoding: .utf8)
            let range = NSRange(text.startIndex..., in: text)
            for pattern in patterns {
                for match in pattern.matches(in: text, range: range) {
                    if let code = Range(match.range(at: 1), in: text) { codes.insert(String(text[code])) }
                }
            }
        }
        return codes
    }

    @Test func everyCodeInTheSourcesIsCatalogued() throws {
        let codes = try Self.codesInSources()
        #expect(codes.count >= 40, "\(codes.sorted())")
        let missing = codes.subtracting(LogEventCatalog.byCode.keys)
        #expect(missing.isEmpty, "log event codes missing from LogEventCatalog: \(missing.sorted())")
    }

    @Test func codesAreUniqueAndErrorsHaveHints() {
        #expect(LogEventCatalog.byCode.count == LogEventCatalog.all.count, "a code is listed twice")
        for entry in LogEventCatalog.all where entry.level >= .error {
            #expect(entry.hint?.isEmpty == false, "\(entry.code) is an error without a hint")
        }
    }

    @Test func docsListTheSameTable() throws {
        let text = try String(contentsOfFile: Repository.root + "/docs/operations.md", encoding: .utf8)
        var documented: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 3, cells[0].hasPrefix("`"), !cells[0].hasPrefix("`hostapp_"), !cells[0].hasPrefix("`--") else { continue }
            let code = cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            if LogEventCatalog.byCode[code] != nil || ["TRACE", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"].contains(cells[1]) {
                documented[code] = cells[1]
            }
        }
        for entry in LogEventCatalog.all {
            #expect(documented[entry.code] == entry.level.rawValue.uppercased(), "docs/operations.md, Logs: \(entry.code)")
        }
        #expect(Set(documented.keys) == Set(LogEventCatalog.byCode.keys))
    }

    @Test func jsonLinesCarryTheDocumentedFields() throws {
        let lines = LockedValue<[String]>([])
        var logger = Logger(label: "hostapp") { label in
            HostLogHandler(label: label, format: .json, level: .trace, sink: LogSink { line in lines.withLock { $0.append(line) } })
        }
        logger[metadataKey: "cluster_id"] = "c1"
        logger.error("database open failed", metadata: ["event": "db_open_failed", "code": "db_unavailable"])
        logger.info("no code here")
        logger.warning("custom", metadata: ["event": "db_open_retry", "hint": "mine"])
        let records = try lines.withLock { $0 }.map { try JSONParser.parse($0) }
        #expect(records.count == 3)
        #expect(records[0]["event"] == "db_open_failed" && records[0]["level"] == "error" && records[0]["cluster_id"] == "c1")
        #expect(records[0]["message"] == "database open failed")
        #expect(records[0]["hint"] == .string(LogEventCatalog.hint(for: "db_open_failed") ?? ""))
        #expect(records[0]["ts"]?.stringValue?.hasSuffix("Z") == true)
        #expect(records[1]["event"] == "log" && records[1].objectValue?.keys.contains("hint") == false)
        #expect(records[2]["hint"] == "mine")
    }
}
