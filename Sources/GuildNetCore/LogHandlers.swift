import Foundation
import Logging
import Synchronization

/// How log lines are written: `text` for people, `json` (one object per line) for collectors.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}

/// A line-oriented sink: each call writes one whole line with a single `write(2)`, so lines from
/// concurrent tasks never interleave.
public struct LogSink: Sendable {
    private let writeLine: @Sendable (String) -> Void

    public init(_ writeLine: @escaping @Sendable (String) -> Void) {
        self.writeLine = writeLine
    }

    public func write(_ line: String) { writeLine(line) }

    /// Standard error.
    public static let standardError = LogSink { line in
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(2, base + offset, buffer.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }
}

/// A swift-log handler that renders `text` or `json` lines into a ``LogSink``.
///
/// Metadata is printed as given: callers never put credentials in log metadata (settings values
/// are never logged, only keys; see ``SecretKeys``).
public struct HostLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public let label: String
    public let format: LogFormat
    public let sink: LogSink

    public init(label: String, format: LogFormat, level: Logger.Level = .info, sink: LogSink = .standardError) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra, uniquingKeysWith: { _, new in new }) }
        // Every line carries an event code (docs/operations.md, "Log events"); warnings and errors
        // of a catalogued event carry the catalogue's hint unless the caller gave one.
        let code = merged["event"]?.description ?? LogEventCatalog.unclassified
        if merged["event"] == nil, format == .json { merged["event"] = .string(code) }
        if merged["hint"] == nil, event.level >= .warning, let hint = LogEventCatalog.hint(for: code) {
            merged["hint"] = .string(hint)
        }
        let timestamp = Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
        switch format {
        case .text:
            var line = "\(timestamp) \(event.level.rawValue.uppercased()) \(label): \(event.message)"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                line += " \(key)=\(Self.render(value))"
            }
            sink.write(line)
        case .json:
            var object: [String: Any] = [
                "ts": timestamp, "level": event.level.rawValue, "logger": label, "message": "\(event.message)",
            ]
            for (key, value) in merged { object[key] = Self.jsonObject(value) }
            if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                sink.write(String(decoding: data, as: UTF8.self))
            }
        }
    }

    private static func render(_ value: Logger.MetadataValue) -> String {
        let text = value.description
        return text.contains(" ") ? String(reflecting: text) : text
    }

    private static func jsonObject(_ value: Logger.MetadataValue) -> Any {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let s): return s.description
        case .array(let values): return values.map(jsonObject)
        case .dictionary(let dict): return dict.mapValues(jsonObject)
        }
    }
}

extension Logger {
    /// Logs a lifecycle event at INFO with its stable `event` code.
    public func lifecycle(_ event: LifecycleEvent, _ message: @autoclosure () -> String, metadata extra: Logger.Metadata = [:]) {
        var meta = extra
        meta["event"] = .string(event.rawValue)
        info("\(message())", metadata: meta)
    }

    /// A copy of this logger carrying `cluster_id` (and the operator's name when it differs).
    public func scoped(to cluster: ClusterID) -> Logger {
        var copy = self
        copy[metadataKey: "cluster_id"] = .string(cluster.key)
        if cluster.name != cluster.key { copy[metadataKey: "cluster_name"] = .string(cluster.name) }
        return copy
    }
}
