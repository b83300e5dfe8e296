import Foundation
import GuildNetCore
import Logging

@testable import GuildNetSettings

/// A fresh directory under the system temporary directory, removed when `body` returns.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("guildnet-settings-tests-" + UUID().uuidString).path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

func writeFile(_ path: String, _ text: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

func readBytes(_ path: String) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: path))
}

func readText(_ path: String) throws -> String {
    String(decoding: try readBytes(path), as: UTF8.self)
}

func permissions(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

/// The settings file of cluster `key` under `stateDirectory`.
func settingsPath(_ stateDirectory: String, _ key: String = "c1") -> String {
    stateDirectory + "/clusters/" + key + "/settings.json"
}

/// Runs `body` and returns the ``HostError`` it throws, or `nil` when it does not throw one.
func hostError(_ body: () throws -> Void) -> HostError? {
    do {
        try body()
        return nil
    } catch let error as HostError {
        return error
    } catch {
        return nil
    }
}

func asyncHostError(_ body: () async throws -> Void) async -> HostError? {
    do {
        try await body()
        return nil
    } catch let error as HostError {
        return error
    } catch {
        return nil
    }
}

/// Collects every rendered log line (message and metadata) in memory.
final class LogCapture: Sendable {
    private let lines = LockedValue<[String]>([])

    func append(_ line: String) {
        lines.withLock { $0.append(line) }
    }

    var all: [String] { lines.withLock { $0 } }
    var text: String { all.joined(separator: "\n") }

    func logger(label: String = "settings-test") -> Logger {
        Logger(label: label) { label in CapturingLogHandler(label: label, capture: self) }
    }
}

struct CapturingLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    let label: String
    let capture: LogCapture

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra, uniquingKeysWith: { _, new in new }) }
        var line = "\(event.level) \(label): \(event.message)"
        for key in merged.keys.sorted() {
            if let value = merged[key] { line += " \(key)=\(value)" }
        }
        capture.append(line)
    }
}
