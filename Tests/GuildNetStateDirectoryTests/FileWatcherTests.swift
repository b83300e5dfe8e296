import Foundation
import GuildNetCore
import GuildNetStateDirectory
import TestSupport
import Testing

/// Appends paths; ``clear()`` forgets them.
final class Seen: Sendable {
    private let paths = LockedValue<[String]>([])
    func append(_ path: String) { paths.withLock { $0.append(path) } }
    func clear() { paths.withLock { $0.removeAll() } }
    var all: [String] { paths.withLock { $0 } }
}

@Suite("FileWatcher")
struct FileWatcherTests {
    @Test("in-place writes, rename-and-replace and ..data symlink swaps are reported; other files are not")
    func reportsEveryKindOfReplacement() async throws {
        let dir = TemporaryDirectory("watch")
        defer { dir.remove() }
        let watched = dir.path + "/settings.json"
        let linked = dir.path + "/config.json"
        try Data("{}".utf8).write(to: URL(fileURLWithPath: watched))
        // The ConfigMap layout: config.json → ..data/config.json, ..data → a timestamped directory.
        try FileManager.default.createDirectory(atPath: dir.path + "/v1", withIntermediateDirectories: true)
        try Data("1".utf8).write(to: URL(fileURLWithPath: dir.path + "/v1/config.json"))
        try FileManager.default.createSymbolicLink(atPath: dir.path + "/..data", withDestinationPath: "v1")
        try FileManager.default.createSymbolicLink(atPath: linked, withDestinationPath: "..data/config.json")
        let seen = Seen()
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try? await FileWatcher(paths: [watched, linked]).run { paths in for path in paths { seen.append(path) } } }
            // The watch starts a moment after the task: repeat each change until it is seen.
            func expectReported(_ path: String, _ what: String, change: () throws -> Void) async throws {
                seen.clear()
                var polls = 0
                try await eventually(what, timeout: .seconds(45)) {
                    if polls % 40 == 0 { try change() }
                    polls += 1
                    return seen.all.contains(path)
                }
            }
            try await expectReported(watched, "an in-place write") {
                try Data("{\"a\":1}".utf8).write(to: URL(fileURLWithPath: watched))
            }
            try await expectReported(watched, "a rename over the file") {
                try Data("{\"a\":2}".utf8).write(to: URL(fileURLWithPath: watched + ".tmp"))
                _ = rename(watched + ".tmp", watched)
            }
            var version = 1
            try await expectReported(linked, "a ..data swap") {
                version += 1
                try FileManager.default.createDirectory(atPath: dir.path + "/v\(version)", withIntermediateDirectories: true)
                try Data("\(version)".utf8).write(to: URL(fileURLWithPath: dir.path + "/v\(version)/config.json"))
                try? FileManager.default.removeItem(atPath: dir.path + "/..data_tmp")
                try FileManager.default.createSymbolicLink(atPath: dir.path + "/..data_tmp", withDestinationPath: "v\(version)")
                _ = rename(dir.path + "/..data_tmp", dir.path + "/..data")
            }
            seen.clear()
            try Data("x".utf8).write(to: URL(fileURLWithPath: dir.path + "/unrelated.txt"))
            try Data("{\"a\":3}".utf8).write(to: URL(fileURLWithPath: watched))
            try await eventually("the next change", timeout: .seconds(45)) { seen.all.contains(watched) }
            #expect(!seen.all.contains { $0.hasSuffix("unrelated.txt") })
            group.cancelAll()
        }
        // That cancellation closes the descriptor is checked end to end: SubsystemsEndToEndTests sees the
        // daemon's descriptors back at their baseline after a cluster (and its settings watcher) stopped.
    }
}

@Suite("FileWatchHub")
struct FileWatchHubTests {
    @Test("one descriptor for many files: each change reaches only its own handler; unwatch stops delivery")
    func routesChangesToTheirHandlers() async throws {
        let dir = TemporaryDirectory("hub")
        defer { dir.remove() }
        let paths = (0..<3).map { dir.path + "/c\($0)/settings.json" }
        for path in paths {
            try FileManager.default.createDirectory(atPath: AtomicFile.parentDirectory(of: path), withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: URL(fileURLWithPath: path))
        }
        let hub = FileWatchHub()
        let seen = Seen()
        let tokens = paths.map { path in hub.watch(path) { seen.append(path) } }
        #expect(tokens.allSatisfy { $0 != nil })
        #expect(hub.count == 3)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await hub.run() }
            var polls = 0
            try await eventually("c1's change delivered", timeout: .seconds(60)) {
                if polls % 40 == 0 {
                    try Data("{\"v\":\(polls)}".utf8).write(to: URL(fileURLWithPath: paths[1] + ".tmp"))
                    _ = rename(paths[1] + ".tmp", paths[1])
                }
                polls += 1
                return seen.all.contains(paths[1])
            }
            #expect(!seen.all.contains(paths[0]) && !seen.all.contains(paths[2]))
            if let token = tokens[1] { hub.unwatch(token) }
            #expect(hub.count == 2)
            seen.clear()
            try Data("{\"v\":\"late\"}".utf8).write(to: URL(fileURLWithPath: paths[1]))
            try Data("{\"v\":\"other\"}".utf8).write(to: URL(fileURLWithPath: paths[2]))
            try await eventually("c2's change delivered", timeout: .seconds(60)) { seen.all.contains(paths[2]) }
            #expect(!seen.all.contains(paths[1]), "an unwatched file was delivered")
            group.cancelAll()
        }
        #expect(hub.watch(paths[0]) {} == nil, "a stopped hub watches nothing")
    }
}
